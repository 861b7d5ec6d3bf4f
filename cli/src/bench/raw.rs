//! The file baselines: no engine at all, only the disk.
//!
//! - [`Raw`]: `write` + `fdatasync` per append, one at a time, into a growing file (every
//!   sync also carries the file's new size).
//! - [`RawPrealloc`]: `pwrite` + `fdatasync` per append, one at a time, into a file that
//!   was written in full and synced before the run, wrapping around at its end as a
//!   recycled log would. No sync carries a size or extent change: this is the disk's floor
//!   for one durable append.
//! - [`RawBatched`]: every queued proposer's bytes in one `pwrite` + `fdatasync` into such
//!   a preallocated file (the first waiter to find no sync under way leads the next one):
//!   ideal group commit with no engine, the ceiling for many concurrent proposers.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};

use prost::Message;
use rocklog::Entry;

/// Errors of the baseline (the same type as the driver's, named here so the baseline
/// depends on nothing of the bench).
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The bytes an append writes: each entry as a length-delimited protobuf record, as
/// rocklog's own record would carry it.
fn encode(entries: &[Entry]) -> Result<Vec<u8>, BoxError> {
    let mut buf = Vec::with_capacity(entries.iter().map(|e| e.payload.len() + 24).sum());
    for e in entries {
        e.encode_length_delimited(&mut buf)?;
    }
    Ok(buf)
}

fn lock<T>(m: &Mutex<T>) -> Result<MutexGuard<'_, T>, BoxError> {
    m.lock().map_err(|_| "a raw baseline's lock is poisoned".into())
}

/// A plain file: `write` + `fdatasync` per append, one at a time.
pub struct Raw {
    file: Mutex<File>,
    syncs: AtomicU64,
}

impl Raw {
    /// Creates `raw.log` in `dir`.
    pub fn open(dir: &Path) -> Result<Self, BoxError> {
        let file = OpenOptions::new().create(true).append(true).open(dir.join("raw.log"))?;
        Ok(Raw { file: Mutex::new(file), syncs: AtomicU64::new(0) })
    }

    /// Writes and syncs `entries`.
    pub fn append(&self, entries: &[Entry]) -> Result<(), BoxError> {
        let buf = encode(entries)?;
        let mut file = lock(&self.file)?;
        file.write_all(&buf)?;
        file.sync_data()?;
        self.syncs.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// fsyncs so far.
    pub fn syncs(&self) -> u64 {
        self.syncs.load(Ordering::Relaxed)
    }
}

/// Bytes of the preallocated files: written in full and synced when opened, so every
/// later `pwrite` overwrites allocated, written blocks.
const PREALLOC_BYTES: u64 = 64 << 20;

/// A preallocated, already-written file, overwritten from its start and wrapping at its
/// end as a recycled log is: no sync into it carries a size or extent change.
struct Ring {
    file: File,
    /// Next write offset.
    offset: u64,
}

impl Ring {
    /// Creates `name` in `dir`, writes [`PREALLOC_BYTES`] of zeros into it and syncs it
    /// (file and directory), before the run's clock starts.
    fn create(dir: &Path, name: &str) -> Result<Self, BoxError> {
        let file =
            OpenOptions::new().create(true).read(true).write(true).truncate(true).open(dir.join(name))?;
        // Page by page: a large write would fill the page cache with large folios, and
        // Linux accounts a whole folio as written (`/proc/self/io`) when one byte of it
        // is dirtied again, which would report megabytes per append.
        let chunk = vec![0u8; 4096];
        let mut at = 0;
        while at < PREALLOC_BYTES {
            file.write_all_at(&chunk, at)?;
            at += chunk.len() as u64;
        }
        file.sync_all()?;
        File::open(dir)?.sync_all()?;
        Ok(Ring { file, offset: 0 })
    }

    /// Writes `buf` at the next offset (from the start again when it does not fit) and
    /// fdatasyncs it.
    fn write_synced(&mut self, buf: &[u8]) -> std::io::Result<()> {
        let len = buf.len() as u64;
        if len > PREALLOC_BYTES {
            return Err(std::io::Error::other(format!(
                "a write of {len} bytes exceeds the {PREALLOC_BYTES}-byte preallocated file"
            )));
        }
        if self.offset + len > PREALLOC_BYTES {
            self.offset = 0;
        }
        self.file.write_all_at(buf, self.offset)?;
        self.file.sync_data()?;
        self.offset += len;
        Ok(())
    }
}

/// `pwrite` + `fdatasync` into a preallocated, already-written file, one append at a time.
pub struct RawPrealloc {
    /// Under the lock, so appends go one at a time as on a log.
    ring: Mutex<Ring>,
    syncs: AtomicU64,
}

impl RawPrealloc {
    /// Creates and fills `raw-prealloc.log` in `dir`.
    pub fn open(dir: &Path) -> Result<Self, BoxError> {
        Ok(RawPrealloc { ring: Mutex::new(Ring::create(dir, "raw-prealloc.log")?), syncs: AtomicU64::new(0) })
    }

    /// Overwrites the next bytes of the file with `entries` and syncs them.
    pub fn append(&self, entries: &[Entry]) -> Result<(), BoxError> {
        let buf = encode(entries)?;
        lock(&self.ring)?.write_synced(&buf)?;
        self.syncs.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// fsyncs so far.
    pub fn syncs(&self) -> u64 {
        self.syncs.load(Ordering::Relaxed)
    }
}

/// The queue of [`RawBatched`].
#[derive(Default)]
struct Queue {
    /// Bytes of appends that no sync has taken yet.
    pending: Vec<u8>,
    /// Appends queued so far; an append's ticket is the count before it.
    queued: u64,
    /// Every append with a ticket below this is durable.
    durable: u64,
    /// A leader is writing and syncing.
    syncing: bool,
    /// The first failed sync: every append it held, and every later one, fails.
    failed: Option<String>,
}

/// Group commit with no engine: one `pwrite` + `fdatasync` into a preallocated file for
/// every queued append.
pub struct RawBatched {
    ring: Mutex<Ring>,
    queue: Mutex<Queue>,
    synced: Condvar,
    syncs: AtomicU64,
}

impl RawBatched {
    /// Creates and fills `raw-batched.log` in `dir`.
    pub fn open(dir: &Path) -> Result<Self, BoxError> {
        Ok(RawBatched {
            ring: Mutex::new(Ring::create(dir, "raw-batched.log")?),
            queue: Mutex::new(Queue::default()),
            synced: Condvar::new(),
            syncs: AtomicU64::new(0),
        })
    }

    /// Queues `entries`; returns once a sync holding them has finished. The caller that
    /// finds no sync under way writes and syncs everything queued so far.
    pub fn append(&self, entries: &[Entry]) -> Result<(), BoxError> {
        let buf = encode(entries)?;
        let mut q = lock(&self.queue)?;
        let ticket = q.queued;
        q.queued += 1;
        q.pending.extend_from_slice(&buf);
        loop {
            if let Some(e) = &q.failed {
                return Err(format!("raw-batched: an earlier sync failed: {e}").into());
            }
            if q.durable > ticket {
                return Ok(());
            }
            if !q.syncing {
                break;
            }
            q = self.synced.wait(q).map_err(|_| "raw-batched: queue lock poisoned")?;
        }
        // Lead: take everything queued, write and sync it outside the queue's lock.
        q.syncing = true;
        let batch = std::mem::take(&mut q.pending);
        let upto = q.queued;
        drop(q);
        let result = match self.ring.lock() {
            Ok(mut ring) => ring.write_synced(&batch),
            Err(_) => Err(std::io::Error::other("raw-batched: file lock poisoned")),
        };
        let mut q = lock(&self.queue)?;
        q.syncing = false;
        match &result {
            Ok(()) => {
                q.durable = upto;
                self.syncs.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => q.failed = Some(e.to_string()),
        }
        drop(q);
        self.synced.notify_all();
        result.map_err(Into::into)
    }

    /// fsyncs so far.
    pub fn syncs(&self) -> u64 {
        self.syncs.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn entries(first: u64, n: u64) -> Vec<Entry> {
        (first..first + n).map(|i| Entry::new(i, 1, bytes::Bytes::from(vec![7u8; 100]))).collect()
    }

    /// Every append of many threads lands in the file exactly once, and every sync is
    /// counted once (never more syncs than appends).
    #[test]
    fn batched_writes_every_append_once() {
        let dir = tempfile::tempdir().unwrap();
        let raw = Arc::new(RawBatched::open(dir.path()).unwrap());
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let raw = Arc::clone(&raw);
                std::thread::spawn(move || {
                    for i in 0..50 {
                        raw.append(&entries(t * 1000 + i, 1)).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let bytes = std::fs::read(dir.path().join("raw-batched.log")).unwrap();
        let mut buf = bytes.as_slice();
        let mut seen = Vec::new();
        // Records up to the first zero byte: the rest of the file is its prefill.
        while buf.first().is_some_and(|b| *b != 0) {
            seen.push(Entry::decode_length_delimited(&mut buf).unwrap().index);
        }
        seen.sort_unstable();
        let mut expected: Vec<u64> = (0..8).flat_map(|t| (0..50).map(move |i| t * 1000 + i)).collect();
        expected.sort_unstable();
        assert_eq!(seen, expected);
        assert!((1..=400).contains(&raw.syncs()), "{} syncs", raw.syncs());
    }

    /// The preallocated file keeps its size and wraps: appends overwrite, never grow it.
    #[test]
    fn prealloc_overwrites_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let raw = RawPrealloc::open(dir.path()).unwrap();
        for i in 0..100 {
            raw.append(&entries(i, 1)).unwrap();
        }
        let len = std::fs::metadata(dir.path().join("raw-prealloc.log")).unwrap().len();
        assert_eq!(len, PREALLOC_BYTES);
        assert_eq!(raw.syncs(), 100);
        let mut head = vec![0u8; 200];
        raw.ring.lock().unwrap().file.read_exact_at(&mut head, 0).unwrap();
        assert_eq!(Entry::decode_length_delimited(head.as_slice()).unwrap().index, 0);
    }
}
