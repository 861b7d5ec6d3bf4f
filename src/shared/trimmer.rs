//! The trimmer: a small thread per engine that removes the WAL files RocksDB archived
//! and the SST and blob files RocksDB deleted, a chunk at a time
//! ([`crate::storage::wal_trim`] and [`crate::storage::sst_trash`] say why). It holds
//! only a weak reference, so it never keeps an engine alive, and it stops within a chunk
//! of the database closing.

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use super::Shared;
use crate::storage::{sst_trash, wal_trim};

/// How often the thread looks for archived WAL files and new or deleted table files:
/// RocksDB archives one WAL file per flushed memtable, and writes or deletes table files
/// at most a few times per second.
const POLL: Duration = Duration::from_millis(50);

/// Starts the thread, if the configuration archives WAL files or removes SST and blob
/// files in chunks. If the OS cannot start it, RocksDB still deletes the archived WAL
/// files itself once they are [`wal_trim::ARCHIVE_TTL_SECS`] old (with the stall the
/// thread is there to avoid), and SST and blob files are deleted by RocksDB's `unlink`
/// alone. What an earlier open left for a setting that is now off is removed now, at
/// once: without archiving RocksDB never looks at `archive/` again, and nothing looks at
/// `trash/`.
pub(crate) fn start(shared: &Arc<Shared>) {
    let config = &shared.config;
    let (wal, sst) = (wal_trim::enabled(config), sst_trash::enabled(config));
    if !wal {
        let removed = &mut wal_trim::Trimmed::default();
        if let Err(e) = wal_trim::trim_archive(&config.path, 0, &|| true, &shared.wal_removal, removed) {
            tracing::warn!(error = %e, "cannot remove the WAL files an earlier open archived");
        }
    }
    if !sst && let Err(e) = sst_trash::empty(&config.path) {
        tracing::warn!(error = %e, "cannot remove the trash an earlier open left");
    }
    if !wal && !sst {
        return;
    }
    let work = Work {
        dir: config.path.clone(),
        wal_chunk: wal.then(|| config.wal_delete_chunk.bytes()),
        sst_chunk: sst.then(|| config.sst_delete_chunk.bytes()),
    };
    let weak = Arc::downgrade(shared);
    let removal = Arc::clone(&shared.wal_removal);
    let spawned =
        std::thread::Builder::new().name("rocklog-trimmer".into()).spawn(move || run(&weak, &work, &removal));
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start the rocklog trimmer; RocksDB deletes obsolete files itself");
    }
}

/// What the thread removes: archived WAL files and trashed table files, each with its
/// chunk size, or not at all (`None`).
struct Work {
    dir: std::path::PathBuf,
    wal_chunk: Option<u64>,
    sst_chunk: Option<u64>,
}

/// Whether the engine is still open.
fn open(weak: &Weak<Shared>) -> bool {
    weak.upgrade().is_some_and(|shared| shared.db().is_ok())
}

fn run(weak: &Weak<Shared>, work: &Work, removal: &Mutex<()>) {
    let mut warned = false;
    let mut trash = sst_trash::Trash::default();
    let keep_going = || open(weak);
    while open(weak) {
        let (mut wal_removed, mut sst_removed) = (wal_trim::Trimmed::default(), wal_trim::Trimmed::default());
        let mut outcome = Ok(());
        if let Some(chunk) = work.wal_chunk {
            outcome = wal_trim::trim_archive(&work.dir, chunk, &keep_going, removal, &mut wal_removed);
        }
        if let Some(chunk) = work.sst_chunk {
            // Trimmed even when linking failed: files linked before the failure must go.
            let adopted = trash.adopt(&work.dir).map(|_| ());
            let trimmed = trash.trim(&work.dir, chunk, &keep_going, removal, &mut sst_removed);
            outcome = outcome.and(adopted).and(trimmed);
        }
        if let Some(shared) = weak.upgrade() {
            super::Counters::add(&shared.stats.wal_files_trimmed, wal_removed.files);
            super::Counters::add(&shared.stats.sst_files_trimmed, sst_removed.files);
        }
        match outcome {
            Ok(()) => warned = false,
            Err(e) if !warned => {
                tracing::warn!(error = %e, "cannot remove an obsolete file; retrying");
                warned = true;
            }
            Err(_) => {}
        }
        std::thread::sleep(POLL);
    }
}
