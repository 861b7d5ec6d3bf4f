//! Telling when a directory may have new or removed entries, without listing it each time.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

/// A look reads the directory's modification time and calls for a listing only when that
/// changed (a large log has thousands of SST files to list), or when this long has passed
/// since the last listing: timestamps are coarse (a few ms), so a file created in the same
/// tick as the last listing may leave the time unchanged.
const LIST_AT_LEAST_EVERY: Duration = Duration::from_secs(1);

/// When a directory was last listed, and its modification time just before.
#[derive(Debug, Default)]
pub(crate) struct DirWatch {
    listed: Option<(Instant, SystemTime)>,
}

impl DirWatch {
    /// Whether `dir` is due a listing (see [`LIST_AT_LEAST_EVERY`]); if so, the caller is
    /// taken to list it now. Fails when the directory's modification time cannot be read.
    pub fn due(&mut self, dir: &Path) -> std::io::Result<bool> {
        let now = Instant::now();
        let modified = std::fs::metadata(dir)?.modified()?;
        let due = self
            .listed
            .is_none_or(|(at, seen)| seen != modified || now.duration_since(at) >= LIST_AT_LEAST_EVERY);
        if due {
            self.listed = Some((now, modified));
        }
        Ok(due)
    }
}
