//! The write epoch, and the read protocol built on it.
//!
//! The writer applies a batch to RocksDB first and publishes the groups' new bounds
//! after. In between, a reader can find data and bounds disagreeing: a purge already
//! applied while the old first index is still published looks like a hole. The epoch
//! tells such a reader to wait and read again instead of reporting corruption:
//!
//! - it is odd while the writer has a batch in RocksDB that it has not published yet, even
//!   otherwise; every batch moves it on by two ([`WriteEpoch::write_started`],
//!   [`WriteEpoch::write_done`]);
//! - a read that failed is believed only when the epoch was even and unchanged across the
//!   read and the group's bounds are the same as before ([`WriteEpoch::read`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::error::Result;
use crate::state::LogState;

/// How often a read retries when the log changed under it (a truncate or purge committed
/// between reading the group's bounds and reading its entries).
const READ_RETRIES: usize = 8;

/// The longest a failed read waits for the batch in flight to be published.
const PUBLISH_WAIT: Duration = Duration::from_millis(100);

/// See the module docs.
#[derive(Debug, Default)]
pub(crate) struct WriteEpoch(AtomicU64);

impl WriteEpoch {
    /// The writer is about to write a batch (the epoch turns odd).
    pub fn write_started(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }

    /// The batch is published, or failed (the epoch turns even).
    pub fn write_done(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }

    fn current(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }

    /// Runs `attempt` against the group's bounds from `bounds` until it succeeds, or until
    /// its failure is real: no batch was written between reading the bounds and the end of
    /// the attempt, and the bounds are unchanged. Otherwise a truncate or purge may have
    /// reached RocksDB before its new bounds were published: wait for the publish and try
    /// again, at most [`READ_RETRIES`] times. An error from `bounds` ends the read.
    pub fn read<T>(
        &self,
        bounds: impl Fn() -> Result<LogState>,
        mut attempt: impl FnMut(&LogState) -> Result<T>,
    ) -> Result<T> {
        let mut tries = 0;
        loop {
            let epoch = self.current();
            let before = bounds()?;
            let result = attempt(&before);
            tries += 1;
            if result.is_ok() || tries >= READ_RETRIES {
                return result;
            }
            let now = self.current();
            if now == epoch && epoch.is_multiple_of(2) && bounds()? == before {
                return result;
            }
            self.wait_for_publish(now);
        }
    }

    /// Waits (briefly, on a reader's error path only) until the batch in flight at epoch
    /// `seen` has been published.
    fn wait_for_publish(&self, seen: u64) {
        let deadline = Instant::now() + PUBLISH_WAIT;
        while self.current() == seen && !seen.is_multiple_of(2) && Instant::now() < deadline {
            std::thread::yield_now();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;
    use crate::error::Error;

    fn hole() -> Error {
        Error::corruption(1, "index 5", "entry missing inside the log")
    }

    #[test]
    fn a_failure_with_no_write_in_between_is_believed_at_once() {
        let epoch = WriteEpoch::default();
        let tries = Cell::new(0);
        let r: Result<()> = epoch.read(
            || Ok(LogState::default()),
            |_| {
                tries.set(tries.get() + 1);
                Err(hole())
            },
        );
        assert!(r.is_err());
        assert_eq!(tries.get(), 1);
    }

    #[test]
    fn a_failure_during_a_write_is_retried_until_it_succeeds() {
        let epoch = WriteEpoch::default();
        let tries = Cell::new(0);
        let r = epoch.read(
            || Ok(LogState::default()),
            |_| {
                tries.set(tries.get() + 1);
                if tries.get() == 1 {
                    // The writer wrote and published a batch while this attempt ran.
                    epoch.write_started();
                    epoch.write_done();
                    return Err(hole());
                }
                Ok(tries.get())
            },
        );
        assert_eq!(r.ok(), Some(2));
    }

    #[test]
    fn retries_are_bounded() {
        let epoch = WriteEpoch::default();
        let tries = Cell::new(0);
        let r: Result<()> = epoch.read(
            || Ok(LogState::default()),
            |_| {
                tries.set(tries.get() + 1);
                epoch.write_started();
                epoch.write_done();
                Err(hole())
            },
        );
        assert!(r.is_err());
        assert_eq!(tries.get(), READ_RETRIES);
    }
}
