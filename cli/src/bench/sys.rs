//! What the process costs: CPU time (getrusage), bytes written to storage
//! (/proc/self/io), bytes its data directory's disk wrote (/sys/dev/block) and peak RSS
//! (/proc/self/status, reset through /`proc/self/clear_refs`).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::resource::{UsageWho, getrusage};
use nix::sys::time::TimeValLike;

/// A reading of the process's counters.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sample {
    /// User + system CPU time of every thread.
    pub cpu: Duration,
    /// Bytes this process caused to be sent to the storage layer: pages it dirtied, as
    /// the kernel counts them, which can be more than reaches the disk.
    pub write_bytes: u64,
    /// Bytes the data directory's block device wrote (every process's, and the
    /// filesystem's journal), when that device has counters.
    pub disk_write_bytes: Option<u64>,
}

/// The block device a data directory lives on, read through its sectors-written counter
/// (`/sys/dev/block/MAJOR:MINOR/stat`, partitions included).
#[derive(Clone, Debug)]
pub struct Disk {
    stat: PathBuf,
}

impl Disk {
    /// The device holding `dir`; `None` when it has no block-device counters (tmpfs,
    /// overlay and other virtual filesystems) or `dir` cannot be read.
    pub fn of(dir: &Path) -> Option<Disk> {
        let dev = std::fs::metadata(dir).ok()?.dev();
        let (major, minor) = (nix::sys::stat::major(dev), nix::sys::stat::minor(dev));
        let disk = Disk { stat: PathBuf::from(format!("/sys/dev/block/{major}:{minor}/stat")) };
        disk.written().map(|_| disk)
    }

    /// Bytes the device has written since boot: the seventh field of its `stat` file,
    /// sectors of 512 bytes whatever the device's own sector size.
    fn written(&self) -> Option<u64> {
        let text = std::fs::read_to_string(&self.stat).ok()?;
        text.split_whitespace().nth(6)?.parse::<u64>().ok()?.checked_mul(512)
    }
}

/// Reads the counters now, `disk`'s too when given. Missing sources read as zero (not
/// every kernel has them), or as `None` for the disk.
pub fn sample(disk: Option<&Disk>) -> Sample {
    let cpu = getrusage(UsageWho::RUSAGE_SELF)
        .map(|u| {
            let us = u.user_time().num_microseconds() + u.system_time().num_microseconds();
            Duration::from_micros(u64::try_from(us).unwrap_or(0))
        })
        .unwrap_or_default();
    Sample {
        cpu,
        write_bytes: proc_field("/proc/self/io", "write_bytes:").unwrap_or(0),
        disk_write_bytes: disk.and_then(Disk::written),
    }
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
        let a = sample(None);
        let mut x = 0u64;
        for i in 0..5_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let b = sample(None);
        assert!(b.cpu >= a.cpu);
        assert!(rss() > 0 && peak_rss() >= rss() / 2);
    }

    #[test]
    fn disk_counters_read_the_seventh_field_in_sectors() {
        let dir = tempfile::tempdir().unwrap();
        let stat = dir.path().join("stat");
        // A real `stat` line: reads, merges, sectors read, ms, writes, merges, sectors written, ...
        std::fs::write(
            &stat,
            "  2510188   967390 450728906  2937202 82335612 11277414 4876739624  8868648 0\n",
        )
        .unwrap();
        assert_eq!(Disk { stat: stat.clone() }.written(), Some(4_876_739_624 * 512));
        std::fs::write(&stat, "1 2 3\n").unwrap();
        assert_eq!(Disk { stat }.written(), None);
        assert!(Disk::of(Path::new("/proc")).is_none(), "procfs has no block device");
    }

    /// A directory on a block device has counters, and they count a synced write; one on
    /// a virtual filesystem (device major 0) has none.
    #[test]
    fn disk_counters_count_a_synced_write() {
        use std::io::Write;
        let dir = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
        let major = nix::sys::stat::major(std::fs::metadata(dir.path()).unwrap().dev());
        let Some(disk) = Disk::of(dir.path()) else {
            assert_eq!(major, 0, "a directory on block device {major} has no counters");
            return;
        };
        let before = sample(Some(&disk)).disk_write_bytes.unwrap();
        let mut file = std::fs::File::create(dir.path().join("data")).unwrap();
        file.write_all(&vec![7u8; 1 << 20]).unwrap();
        file.sync_all().unwrap();
        let after = sample(Some(&disk)).disk_write_bytes.unwrap();
        assert!(after >= before + (1 << 20), "{before} -> {after}");
    }
}
