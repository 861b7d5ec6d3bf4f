//! What the process costs: CPU time (getrusage), bytes written to storage
//! (/proc/self/io) and peak RSS (/proc/self/status, reset through /`proc/self/clear_refs`).

use std::time::Duration;

use nix::sys::resource::{UsageWho, getrusage};
use nix::sys::time::TimeValLike;

/// A reading of the process's counters.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sample {
    /// User + system CPU time of every thread.
    pub cpu: Duration,
    /// Bytes this process caused to be sent to the storage layer.
    pub write_bytes: u64,
}

/// Reads the counters now. Missing sources read as zero (not every kernel has them).
pub fn sample() -> Sample {
    let cpu = getrusage(UsageWho::RUSAGE_SELF)
        .map(|u| {
            let us = u.user_time().num_microseconds() + u.system_time().num_microseconds();
            Duration::from_micros(u64::try_from(us).unwrap_or(0))
        })
        .unwrap_or_default();
    Sample { cpu, write_bytes: proc_field("/proc/self/io", "write_bytes:").unwrap_or(0) }
}

/// The process's peak resident set size since the last [`reset_peak_rss`], in bytes.
pub fn peak_rss() -> u64 {
    proc_field("/proc/self/status", "VmHWM:").map_or(0, |kib| kib * 1024)
}

/// The current resident set size, in bytes.
pub fn rss() -> u64 {
    proc_field("/proc/self/status", "VmRSS:").map_or(0, |kib| kib * 1024)
}

/// Resets the peak RSS to the current RSS (Linux: writing 5 to `clear_refs`), so each run
/// reports its own peak. Silently does nothing where unsupported.
pub fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn proc_field(path: &str, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    let line = text.lines().find(|l| l.starts_with(key))?;
    line[key.len()..].split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_move_forward() {
        let a = sample();
        let mut x = 0u64;
        for i in 0..5_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let b = sample();
        assert!(b.cpu >= a.cpu);
        assert!(rss() > 0 && peak_rss() >= rss() / 2);
    }
}
