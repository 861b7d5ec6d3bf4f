//! File data: reads and writes change only the visible bytes; `fsync`/`fdatasync` copy
//! them to the durable ones. Also the injected faults (EIO on fsync, ENOSPC on write).

use fuser::Errno;

use super::tree::{Body, FileData, Res, Tree};

/// `fallocate` mode bits this filesystem implements (see `fallocate(2)`).
const FALLOC_FL_KEEP_SIZE: i32 = nix::libc::FALLOC_FL_KEEP_SIZE;
const FALLOC_FL_PUNCH_HOLE: i32 = nix::libc::FALLOC_FL_PUNCH_HOLE;
const FALLOC_FL_ZERO_RANGE: i32 = nix::libc::FALLOC_FL_ZERO_RANGE;
/// No file grows beyond this (it is all in memory).
const MAX_FILE: usize = 1 << 36;

impl Tree {
    pub(crate) fn file(&self, ino: u64) -> Res<&FileData> {
        match &self.inode(ino)?.body {
            Body::File(f) => Ok(f),
            Body::Dir(_) => Err(Errno::EISDIR),
            _ => Err(Errno::EINVAL),
        }
    }

    fn file_mut(&mut self, ino: u64) -> Res<&mut FileData> {
        match &mut self.inode_mut(ino)?.body {
            Body::File(f) => Ok(f),
            Body::Dir(_) => Err(Errno::EISDIR),
            _ => Err(Errno::EINVAL),
        }
    }

    /// Up to `size` visible bytes from `offset`.
    pub(crate) fn read(&self, ino: u64, offset: u64, size: u32) -> Res<&[u8]> {
        let data = &self.file(ino)?.visible;
        let start = usize::try_from(offset).unwrap_or(usize::MAX).min(data.len());
        let len = usize::try_from(size).unwrap_or(usize::MAX);
        Ok(&data[start..start.saturating_add(len).min(data.len())])
    }

    /// Writes `bytes` at `offset` (visible only); ENOSPC while that fault is set.
    pub(crate) fn write(&mut self, ino: u64, offset: u64, bytes: &[u8]) -> Res<u32> {
        let written = u32::try_from(bytes.len()).map_err(|_| Errno::EINVAL)?;
        if self.enospc {
            self.counters.write_faults += 1;
            return Err(Errno::ENOSPC);
        }
        self.counters.writes += 1;
        let (start, end) = range(offset, bytes.len() as u64)?;
        let file = self.file_mut(ino)?;
        let old_len = file.visible.len();
        if end > old_len {
            file.visible.resize(end, 0);
        }
        file.visible[start..end].copy_from_slice(bytes);
        file.dirty(start.min(old_len), end);
        file.last_write = Some((start, bytes.len()));
        self.touch(ino);
        Ok(written)
    }

    /// Sets the visible size (truncate or extend with zeros); not durable until synced.
    /// Shrinking frees the space reserved past the end, as on Linux.
    pub(crate) fn set_size(&mut self, ino: u64, size: u64) -> Res<()> {
        let size = usize::try_from(size).map_err(|_| Errno::EFBIG)?;
        if size > MAX_FILE {
            return Err(Errno::EFBIG);
        }
        let old_len = self.file(ino)?.visible.len();
        if size > old_len {
            self.counters.extending_truncates += 1;
        }
        let file = self.file_mut(ino)?;
        if size <= old_len {
            file.reserved = 0;
        }
        file.visible.resize(size, 0);
        file.dirty(size.min(old_len), size.max(old_len));
        file.last_write = None;
        self.touch(ino);
        Ok(())
    }

    /// `fallocate`: mode 0 and `FALLOC_FL_ZERO_RANGE` may extend the visible size,
    /// `FALLOC_FL_KEEP_SIZE` keeps it, `FALLOC_FL_PUNCH_HOLE` zeroes. Nothing is durable
    /// until synced. Other modes (collapse, insert, unshare) answer EOPNOTSUPP.
    pub(crate) fn fallocate(&mut self, ino: u64, offset: u64, length: u64, mode: i32) -> Res<()> {
        let known = FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE;
        if mode & !known != 0 {
            return Err(Errno::EOPNOTSUPP);
        }
        let punch = mode & FALLOC_FL_PUNCH_HOLE != 0;
        let zero = mode & FALLOC_FL_ZERO_RANGE != 0;
        let keep_size = mode & FALLOC_FL_KEEP_SIZE != 0;
        if punch && (!keep_size || zero) {
            return Err(Errno::EINVAL);
        }
        if self.enospc && !punch {
            self.counters.write_faults += 1;
            return Err(Errno::ENOSPC);
        }
        let (start, end) = range(offset, length)?;
        let file = self.file_mut(ino)?;
        let old_len = file.visible.len();
        let mut changed = false;
        if (punch || zero) && start < old_len {
            file.visible[start..end.min(old_len)].fill(0);
            file.dirty(start, end.min(old_len));
            changed = true;
        }
        if !keep_size && end > old_len {
            file.visible.resize(end, 0);
            file.dirty(old_len, end);
            changed = true;
        }
        if keep_size && !punch && end > old_len {
            file.reserved = file.reserved.max(end);
        }
        if punch && start <= file.reserved && end >= file.reserved {
            // A hole punched over the end of the reserved space frees it from `start`.
            file.reserved = if start > old_len { start } else { 0 };
        }
        if changed {
            file.last_write = None;
            self.touch(ino);
        }
        Ok(())
    }

    /// `fsync` (`datasync` false) or `fdatasync`: both make the file's data and size
    /// durable. An injected failure answers EIO and drops the dirty bytes from what later
    /// syncs write: they are never durable unless written again.
    pub(crate) fn fsync(&mut self, ino: u64, datasync: bool) -> Res<()> {
        if datasync {
            self.counters.fdatasyncs += 1;
        } else {
            self.counters.fsyncs += 1;
        }
        let fail = self.fail_fsyncs > 0;
        if fail {
            self.fail_fsyncs -= 1;
            self.counters.fsync_faults += 1;
        }
        let file = self.file_mut(ino)?;
        file.last_write = None;
        if fail {
            file.lost = Some(Vec::new());
            return Err(Errno::EIO);
        }
        let len = file.visible.len();
        if let Some(ranges) = &mut file.lost {
            file.durable.resize(len, 0);
            for (from, to) in ranges.drain(..) {
                let to = to.min(len);
                if from < to {
                    file.durable[from..to].copy_from_slice(&file.visible[from..to]);
                }
            }
        } else {
            let keep = file.dirty_from.min(file.durable.len()).min(len);
            file.durable.truncate(keep);
            file.durable.extend_from_slice(&file.visible[keep..]);
        }
        file.dirty_from = len;
        Ok(())
    }
}

/// `[offset, offset + len)` as indexes, EFBIG beyond what this filesystem holds.
fn range(offset: u64, len: u64) -> Res<(usize, usize)> {
    let end = offset.checked_add(len).ok_or(Errno::EFBIG)?;
    let end = usize::try_from(end).map_err(|_| Errno::EFBIG)?;
    if end > MAX_FILE {
        return Err(Errno::EFBIG);
    }
    // offset <= end, which fits.
    Ok((usize::try_from(offset).map_err(|_| Errno::EFBIG)?, end))
}
