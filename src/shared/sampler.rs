//! The sampler: a small thread per engine that reads RocksDB's state once every
//! [`STORAGE_SAMPLE_INTERVAL`] and records it as the `rocklog_storage_*` series, off the
//! write path. From the same reading it turns blob garbage collection on or off
//! ([`BlobGc`]). It holds only a weak reference, so it never keeps an engine alive, and
//! it ends within a tenth of a second of the database closing.

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use super::Shared;
use crate::metrics::STORAGE_SAMPLE_INTERVAL;
use crate::storage::StorageStats;
use crate::storage::blob_gc::BlobGc;

/// How often the thread checks whether the engine closed between samples.
const POLL: Duration = Duration::from_millis(100);

/// Records one sample now, then starts the thread that records one per interval. A
/// sample that fails (a property RocksDB cannot answer, the directory unreadable) is
/// logged and skipped: metrics never fail the engine, and blob GC stays as it was.
pub(crate) fn start(shared: &Arc<Shared>) {
    let mut last = Stall::now(&shared.storage_stats());
    let mut gc = BlobGc::new(&shared.config);
    sample(shared, &mut last, &mut gc);
    let weak = Arc::downgrade(shared);
    let spawned =
        std::thread::Builder::new().name("rocklog-sampler".into()).spawn(move || run(&weak, last, gc));
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start the rocklog metrics sampler; rocklog_storage_* stay at their first sample");
        // Nothing will steer blob GC: leave it on, as RocksDB runs it, so that purged
        // entries' space still comes back.
        let always = BlobGc::new(&shared.config).turn_on(shared.db().as_deref().ok());
        if let Err(e) = always {
            tracing::warn!(error = %e, "cannot turn blob garbage collection on either");
        }
    }
}

fn run(weak: &Weak<Shared>, mut last: Stall, mut gc: BlobGc) {
    let mut next = Instant::now() + STORAGE_SAMPLE_INTERVAL;
    loop {
        std::thread::sleep(POLL.min(next.saturating_duration_since(Instant::now())));
        let Some(shared) = weak.upgrade() else { return };
        if shared.db().is_err() {
            return;
        }
        if Instant::now() >= next {
            sample(&shared, &mut last, &mut gc);
            next += STORAGE_SAMPLE_INTERVAL;
        }
    }
}

/// RocksDB's stall counter at one instant, to turn into a share of the time between two.
#[derive(Clone, Copy)]
struct Stall {
    micros: u64,
    at: Instant,
}

impl Stall {
    fn now(counters: &StorageStats) -> Stall {
        Stall { micros: counters.stall_micros, at: Instant::now() }
    }

    /// The share of the time since `self` the writer was stalled, 0 to 1.
    fn ratio_until(self, now: Stall) -> f64 {
        let elapsed = now.at.duration_since(self.at).as_micros();
        if elapsed == 0 {
            return 0.0;
        }
        #[allow(clippy::cast_precision_loss)]
        let ratio = now.micros.saturating_sub(self.micros) as f64 / elapsed as f64;
        ratio.clamp(0.0, 1.0)
    }
}

fn sample(shared: &Shared, last: &mut Stall, gc: &mut BlobGc) {
    match shared.storage_state() {
        Ok(state) => {
            let counters = shared.storage_stats();
            let now = Stall::now(&counters);
            if let Ok(db) = shared.db()
                && let Err(e) = gc.steer(&db, state.blob_garbage_bytes, state.blob_bytes)
            {
                tracing::warn!(error = %e, "turning blob garbage collection on or off failed; it stays as it was");
            }
            shared.metrics.storage.record(&state, &counters, last.ratio_until(now), gc.is_on());
            *last = now;
        }
        Err(e) => tracing::debug!(error = %e, "sampling RocksDB's state failed; skipped"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stall_ratio_is_the_share_of_the_interval() {
        let at = Instant::now();
        let before = Stall { micros: 1_000, at };
        let half = Stall { micros: 501_000, at: at + Duration::from_secs(1) };
        assert!((before.ratio_until(half) - 0.5).abs() < 1e-9);
        let none = Stall { micros: 1_000, at: at + Duration::from_secs(1) };
        assert!(before.ratio_until(none).abs() < 1e-9);
        // Several writers' stalls can add up past the wall time: capped at 1.
        let over = Stall { micros: 5_000_000, at: at + Duration::from_secs(1) };
        assert!((before.ratio_until(over) - 1.0).abs() < 1e-9);
        assert!(before.ratio_until(before).abs() < 1e-9, "no time elapsed");
    }
}
