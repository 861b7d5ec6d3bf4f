//! The trimmer: a small thread per engine that removes the WAL files RocksDB archived,
//! a chunk at a time ([`crate::storage::wal_trim`] says why). It holds only a weak
//! reference, so it never keeps an engine alive, and it stops within a chunk of the
//! database closing.

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use super::Shared;
use crate::storage::wal_trim;

/// How often the thread looks for archived WAL files: RocksDB archives one per flushed
/// memtable, at most a few per second.
const POLL: Duration = Duration::from_millis(50);

/// Starts the thread, if the configuration archives WAL files. If the OS cannot start
/// it, RocksDB still deletes the archived files itself once they are
/// [`wal_trim::ARCHIVE_TTL_SECS`] old (with the stall the thread is there to avoid).
/// Without archiving, RocksDB never looks at `archive/` again: files an earlier open
/// left there are removed now, at once.
pub(crate) fn start(shared: &Arc<Shared>) {
    if !wal_trim::enabled(&shared.config) {
        let removed = &mut wal_trim::Trimmed::default();
        if let Err(e) = wal_trim::trim_archive(&shared.config.path, 0, &|| true, &shared.wal_removal, removed)
        {
            tracing::warn!(error = %e, "cannot remove the WAL files an earlier open archived");
        }
        return;
    }
    let dir = shared.config.path.clone();
    let chunk = shared.config.wal_delete_chunk.bytes();
    let weak = Arc::downgrade(shared);
    let removal = Arc::clone(&shared.wal_removal);
    let spawned = std::thread::Builder::new()
        .name("rocklog-trimmer".into())
        .spawn(move || run(&weak, &dir, chunk, &removal));
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start the rocklog WAL trimmer; RocksDB deletes archived WAL files itself");
    }
}

/// Whether the engine is still open.
fn open(weak: &Weak<Shared>) -> bool {
    weak.upgrade().is_some_and(|shared| shared.db().is_ok())
}

fn run(weak: &Weak<Shared>, dir: &std::path::Path, chunk: u64, removal: &Mutex<()>) {
    let mut warned = false;
    while open(weak) {
        let mut removed = wal_trim::Trimmed::default();
        let outcome = wal_trim::trim_archive(dir, chunk, &|| open(weak), removal, &mut removed);
        if removed.files > 0
            && let Some(shared) = weak.upgrade()
        {
            super::Counters::add(&shared.stats.wal_files_trimmed, removed.files);
        }
        match outcome {
            Ok(()) => warned = false,
            Err(e) if !warned => {
                tracing::warn!(error = %e, "cannot remove an archived WAL file; retrying");
                warned = true;
            }
            Err(_) => {}
        }
        std::thread::sleep(POLL);
    }
}
