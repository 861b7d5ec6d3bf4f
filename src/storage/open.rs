//! Opening a data directory: what is there (new, half-created, rocklog's, foreign),
//! RocksDB's options, the creation protocol and the format-version check.

use std::path::Path;

use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamilyDescriptor, DB, DBCompressionType, DBRecoveryMode, Options,
};

use super::codec::{self, FORMAT_KEY, FORMAT_VERSION, LOG_CF, META_CF};
use super::{DbStatistics, Groups, log_cf, meta_cf, recover};
use crate::config::{Compression, Config};
use crate::error::{Error, Result};

/// The file that marks a directory whose database is being created. It is written (and
/// synced) before RocksDB creates anything, and removed once the column families exist and
/// the format record is synced. While it is there, everything in the directory comes from
/// an interrupted first open that acknowledged nothing, so the next open finishes the
/// creation. Without it, a crash during the first open left a `LOG` alone, a manifest
/// without `CURRENT`, or a database without rocklog's column families: a directory every
/// later open refused as not rocklog's.
const CREATING_MARKER: &str = "ROCKLOG-CREATING";

/// How the directory looked before opening.
#[derive(Debug, PartialEq, Eq)]
enum Existing {
    /// Missing or empty: a new engine is created.
    New,
    /// A creation was interrupted (the marker is there): it is finished on open.
    Creating,
    /// Holds a RocksDB database with rocklog's column families.
    Database,
}

fn classify(path: &Path) -> Result<Existing> {
    let io = |source| Error::Io { path: path.to_owned(), source };
    let not_rocklog = |reason: &str| Error::NotRocklog { path: path.to_owned(), reason: reason.into() };
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Existing::New),
        Err(e) => return Err(io(e)),
        Ok(m) if !m.is_dir() => return Err(not_rocklog("it is not a directory")),
        Ok(_) => {}
    }
    if std::fs::read_dir(path).map_err(io)?.next().is_none() {
        return Ok(Existing::New);
    }
    if path.join(CREATING_MARKER).exists() {
        return Ok(Existing::Creating);
    }
    if !path.join("CURRENT").exists() {
        return Err(not_rocklog("it is not empty and holds no RocksDB database"));
    }
    let cfs = DB::list_cf(&Options::default(), path).map_err(|e| Error::NotRocklog {
        path: path.to_owned(),
        reason: format!("cannot list its column families: {e}"),
    })?;
    for needed in [LOG_CF, META_CF] {
        if !cfs.iter().any(|c| c == needed) {
            return Err(Error::NotRocklog {
                path: path.to_owned(),
                reason: format!("column family `{needed}` is missing (found: {})", cfs.join(", ")),
            });
        }
    }
    Ok(Existing::Database)
}

/// RocksDB options for the database and its two column families. `direct_io`: whether
/// flushes and compactions use direct I/O (`Config::sst_direct_io`, where the filesystem
/// allows it).
fn options(config: &Config, create: bool, direct_io: bool) -> Result<(Options, Vec<ColumnFamilyDescriptor>)> {
    let mut db = Options::default();
    db.create_if_missing(create);
    db.create_missing_column_families(create);
    // Never buffer WAL writes in user space: an acknowledged write must at least be in
    // the OS (Buffered) or on disk (Sync). The seed engine's manual_wal_flush lost
    // acknowledged entries on a plain process crash.
    db.set_manual_wal_flush(false);
    db.set_wal_recovery_mode(DBRecoveryMode::PointInTime);
    db.set_max_background_jobs(2);
    // Let the kernel read ahead in SST and blob files. RocksDB's default advises it that
    // every read is random, which suits point lookups. A Raft log is read by ranges, and a
    // user iterator fetches each blob-stored entry with a read of its own (no prefetch):
    // a cold catch-up read of a group whose 1 KiB entries are in blob files took 1.75x as
    // long with the advice. A random small read still reads only what it asks for.
    db.set_advise_random_on_open(false);
    // Flushes and compactions write back as they go, not in one burst at the file's end
    // that would queue in front of the WAL's fsyncs. SST files only: the WAL is fsynced
    // by every commit anyway.
    db.set_bytes_per_sync(config.sst_bytes_per_sync.bytes());
    db.set_use_direct_io_for_flush_and_compaction(direct_io);
    // With direct I/O each chunk written or read ahead is one request a WAL fsync may
    // queue behind: see `Config::sst_io_size`.
    db.set_writable_file_max_buffer_size(config.sst_io_size.bytes());
    db.set_compaction_readahead_size(usize::try_from(config.sst_io_size.bytes()).unwrap_or(usize::MAX));
    // The WAL a crash leaves to replay: past this, RocksDB flushes the memtables that pin
    // its oldest file (the small `meta` one, mostly). Two memtables' worth rather than four
    // took W6's reopen after a kill from 5.1-5.4 s to 3.5-3.9 s with no visible cost to the
    // fill; one memtable's worth (0.5-2.2 s) made the fill's p99 six times worse.
    db.set_max_total_wal_size(config.write_buffer_size.bytes().saturating_mul(2));
    db.set_keep_log_file_num(8);
    db.set_max_log_file_size(16 << 20);

    let cache = Cache::new_lru_cache(usize::try_from(config.block_cache_size.bytes()).unwrap_or(usize::MAX));
    let mut table = BlockBasedOptions::default();
    table.set_block_cache(&cache);
    let write_buffer = usize::try_from(config.write_buffer_size.bytes()).unwrap_or(usize::MAX);

    // RocksDB turns recycling off under the tolerate-corrupted-tail and absolute-consistency
    // WAL recovery modes, not under point-in-time (ours): the LOG shows it in effect.
    db.set_recycle_log_file_num(config.wal_recycle_files);
    // Every flush covers both column families, so neither's log number ever passes a WAL
    // file the other still needs. With recycled WAL files this is what keeps a power loss
    // from leaving a directory RocksDB refuses to open: RocksDB trims a reused WAL to its
    // new records when it closes it and never syncs the trim, so after a power loss the
    // file's stale tail is back and point-in-time recovery stops there as at a corrupt
    // tail; if a flush of `meta` alone had moved `meta` past that file, RocksDB's
    // consistency check refused the directory (`Config::wal_recycle_files`). `meta` is
    // small: flushing it with every `log` flush costs a small SST file.
    db.set_atomic_flush(true);
    if super::wal_trim::enabled(config) {
        // Obsolete WAL files go to `archive/`, for the trimmer to remove a chunk at a time.
        db.set_wal_ttl_seconds(super::wal_trim::ARCHIVE_TTL_SECS);
    }
    let buffers = i32::try_from(config.max_write_buffers).unwrap_or(i32::MAX);

    let mut log = Options::default();
    log.set_write_buffer_size(write_buffer);
    log.set_max_write_buffer_number(buffers);
    if config.blob_min_size.bytes() > 0 {
        log.set_enable_blob_files(true);
        log.set_min_blob_size(config.blob_min_size.bytes());
        log.set_blob_file_size(config.write_buffer_size.bytes());
        // A purge leaves whole blob files unreferenced, which RocksDB deletes. Blob GC,
        // which rewrites the live entries of partly purged files, starts off unless it
        // is always on: `blob_gc::BlobGc` turns it on while purges have left garbage.
        let percent = config.blob_gc_garbage_percent;
        log.set_enable_blob_gc(percent == 0);
        if percent > 0 {
            log.set_blob_gc_force_threshold(f64::from(percent) / 100.0);
        }
    }
    // Fewer, later compactions: see `Config::l0_compaction_trigger` and
    // `Config::level_base_size`.
    log.set_level_zero_file_num_compaction_trigger(
        i32::try_from(config.l0_compaction_trigger).unwrap_or(i32::MAX),
    );
    log.set_max_bytes_for_level_base(config.level_base_size.bytes());
    log.set_block_based_table_factory(&table);
    log.set_compression_type(rocksdb_compression(config.compression));
    log.set_blob_compression_type(rocksdb_compression(config.blob_compression));
    let log = insert_hints(log)?;

    let mut meta = Options::default();
    meta.set_write_buffer_size(write_buffer.min(8 << 20));
    meta.set_block_based_table_factory(&table);

    let cfs = vec![ColumnFamilyDescriptor::new(LOG_CF, log), ColumnFamilyDescriptor::new(META_CF, meta)];
    Ok((db, cfs))
}

/// RocksDB's compression type for a [`Compression`] setting.
fn rocksdb_compression(compression: Compression) -> DBCompressionType {
    match compression {
        Compression::None => DBCompressionType::None,
        Compression::Lz4 => DBCompressionType::Lz4,
        Compression::Zstd => DBCompressionType::Zstd,
    }
}

/// `log` plus RocksDB's memtable insert hints keyed by group: the memtable remembers,
/// for each group (a key's first 8 bytes), where its last entry went, so the next one,
/// whose index follows it, is linked in there instead of searched for from the top of
/// the skip list. A Raft log appends each group's indexes in order, the case the
/// option was made for. Only the memtable's insert path changes: what it holds, what a
/// read sees and what is flushed are the same.
///
/// The option has no setter in RocksDB's C API, so it is set by RocksDB's own option
/// parser, which copies `log` (its table factory and block cache included) and adds it.
/// Fails only if RocksDB does not know the option, which a test of this build rules out.
fn insert_hints(mut log: Options) -> Result<Options> {
    Ok(log.get_options_from_string("memtable_insert_with_hint_prefix_extractor=rocksdb.FixedPrefix.8")?)
}

/// Names what went wrong when RocksDB refused to open `path`. RocksDB reports I/O errors
/// as text ("IO error: <context>: <file>: <strerror>"): a held lock is "lock hold by
/// current process" (this process) or "While lock file" (another one); a directory
/// RocksDB cannot write to (read-only file system, no permission) fails earlier, when it
/// opens the LOCK file or creates its first files, and is an [`Error::Io`] with that kind,
/// not [`Error::Locked`].
fn map_open_error(path: &Path, e: rocksdb::Error) -> Error {
    let message = e.to_string();
    if message.contains("lock hold by current process") || message.contains("While lock file") {
        return Error::Locked { path: path.to_owned(), message };
    }
    let kind = if message.ends_with("Read-only file system") {
        std::io::ErrorKind::ReadOnlyFilesystem
    } else if message.ends_with("Permission denied") {
        std::io::ErrorKind::PermissionDenied
    } else {
        return Error::Storage(e);
    };
    Error::Io { path: path.to_owned(), source: std::io::Error::new(kind, message) }
}

/// Opens (creating if new) the database at `config.path` for writing and recovers every
/// group's state. Fails on a directory that is not rocklog's, of a newer format, locked by
/// a live engine, or whose metadata does not decode.
/// Also returns how many groups' bounds recovery had to seek for.
pub(crate) fn open(config: &Config) -> Result<(DB, Groups, DbStatistics, u64)> {
    let started = std::time::Instant::now();
    let path = config.path.as_path();
    let existing = classify(path)?;
    if existing == Existing::New {
        begin_creation(path).map_err(|source| Error::Io { path: path.to_owned(), source })?;
    }
    let creating = existing != Existing::Database;
    let direct_io = config.sst_direct_io && direct_io_supported(path);
    let (mut opts, cfs) = options(config, creating, direct_io)?;
    let statistics = DbStatistics::enable(&mut opts);
    let db = DB::open_cf_descriptors(&opts, path, cfs).map_err(|e| map_open_error(path, e))?;
    check_format(&db, path)?;
    if creating {
        // The column families are in the synced manifest and the format record is synced:
        // the database is whole. (A marker that outlives this is harmless: the next open
        // passes the create flags to a complete database, which ignores them.)
        let marker = path.join(CREATING_MARKER);
        std::fs::remove_file(&marker)
            .and_then(|()| sync_dir(path))
            .map_err(|source| Error::Io { path: marker, source })?;
    }
    let db_opened = started.elapsed();
    let (groups, seeked) = recover(&db)?;
    // Which half a slow open spent its time in: RocksDB's (WAL replay after a crash) or
    // rocklog's recovery (seeking each group's bounds when no clean close recorded them).
    tracing::info!(?db_opened, recovered = ?started.elapsed().saturating_sub(db_opened), seeked, "rocklog recovery");
    Ok((db, groups, statistics, seeked))
}

/// The file [`direct_io_supported`] opens, and removes at once.
const DIRECT_IO_PROBE: &str = "ROCKLOG-DIRECT-IO-PROBE";

/// Whether files in `dir` may be opened for direct I/O. Some filesystems refuse it (tmpfs
/// before Linux 6.6, some FUSE filesystems): RocksDB's flushes would then fail and stop
/// every write, so the engine falls back to buffered I/O and says so.
fn direct_io_supported(dir: &Path) -> bool {
    use rustix::fs::{Mode, OFlags};
    let probe = dir.join(DIRECT_IO_PROBE);
    let flags = OFlags::CREATE | OFlags::WRONLY | OFlags::DIRECT | OFlags::CLOEXEC;
    let opened = rustix::fs::open(&probe, flags, Mode::RUSR | Mode::WUSR);
    let _ = std::fs::remove_file(&probe);
    match opened {
        Ok(_) => true,
        Err(error) => {
            tracing::warn!(
                path = %dir.display(), %error,
                "the data directory's filesystem refuses direct I/O: flushes and compactions use the page cache (sst_direct_io)"
            );
            false
        }
    }
}

/// Creates the directory and the creation marker, both durable before RocksDB writes.
fn begin_creation(path: &Path) -> std::io::Result<()> {
    create_dir_durably(path)?;
    std::fs::File::create(path.join(CREATING_MARKER))?.sync_all()?;
    sync_dir(path)
}

/// Creates `path` and every missing ancestor, like `create_dir_all`, and makes each new
/// directory's entry durable by fsyncing its parent, up to the first level that already
/// existed. A new directory's entry lives in its parent: until the parent is fsynced, a
/// power loss can take the directory — and every acknowledged write inside it — away, and
/// RocksDB does not fsync the parent of the directory it is given.
fn create_dir_durably(path: &Path) -> std::io::Result<()> {
    let mut missing = Vec::new();
    let mut level = Some(path);
    while let Some(dir) = level.filter(|d| !d.as_os_str().is_empty()) {
        match std::fs::symlink_metadata(dir) {
            Ok(_) => break,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => missing.push(dir),
            Err(e) => return Err(e),
        }
        level = dir.parent();
    }
    for dir in missing.into_iter().rev() {
        match std::fs::create_dir(dir) {
            Ok(()) => {}
            // Another process created it in between: its creator syncs its entry, and this
            // open syncs the parent below anyway.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => {}
            Err(e) => return Err(e),
        }
        let parent = dir.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        sync_dir(parent)?;
    }
    Ok(())
}

/// Fsyncs the directory `path`, making the entries in it durable.
pub(crate) fn sync_dir(path: &Path) -> std::io::Result<()> {
    std::fs::File::open(path)?.sync_all()
}

/// Opens the database at `path` read-only, for offline inspection, and returns it with
/// its format version. Writes nothing and takes no lock: RocksDB read-only instances do not
/// take the `LOCK` file nor create an info log, so this works beside a live engine and
/// sees the state as of the open (WAL included). Does not recover the groups' state, so
/// a directory with damaged metadata or entries can still be opened and checked.
///
/// Fails with [`Error::NotRocklog`] for a missing, empty or foreign directory (or one
/// without a format-version record), [`Error::UnsupportedVersion`] for a newer format,
/// and [`Error::Storage`] / [`Error::Io`] when RocksDB or the disk fails.
pub(crate) fn open_read_only(path: &Path) -> Result<(DB, u32)> {
    let not_rocklog = |reason: &str| Error::NotRocklog { path: path.to_owned(), reason: reason.into() };
    match classify(path)? {
        Existing::New if path.exists() => return Err(not_rocklog("it is empty")),
        Existing::New => return Err(not_rocklog("it does not exist")),
        Existing::Creating => {
            return Err(not_rocklog(
                "its creation was interrupted: it holds no data yet, and the next engine open completes it",
            ));
        }
        Existing::Database => {}
    }
    let (opts, cfs) = options(&Config::new(path), false, false)?;
    let db =
        DB::open_cf_descriptors_read_only(&opts, path, cfs, false).map_err(|e| map_open_error(path, e))?;
    match read_format(&db)? {
        Some(v) if v <= FORMAT_VERSION => Ok((db, v)),
        Some(found) => Err(Error::UnsupportedVersion { found, supported: FORMAT_VERSION }),
        None => Err(not_rocklog("it has rocklog's column families but no format-version record")),
    }
}

fn read_format(db: &DB) -> Result<Option<u32>> {
    db.get_pinned_cf(meta_cf(db)?, FORMAT_KEY)?.map(|v| codec::decode_format_version(&v)).transpose()
}

/// Checks the format-version record, writing it (synced) into a database that has none
/// and holds nothing else: one whose creation was interrupted before the record landed.
fn check_format(db: &DB, path: &Path) -> Result<()> {
    match read_format(db)? {
        Some(v) if v == FORMAT_VERSION => Ok(()),
        Some(v) if v < FORMAT_VERSION => {
            tracing::info!(path = %path.display(), from = v, to = FORMAT_VERSION, "upgrading the rocklog format");
            let mut wo = rocksdb::WriteOptions::default();
            wo.set_sync(true);
            db.put_cf_opt(meta_cf(db)?, FORMAT_KEY, codec::encode_format_version(), &wo)?;
            Ok(())
        }
        Some(found) => Err(Error::UnsupportedVersion { found, supported: FORMAT_VERSION }),
        None => {
            let empty = |cf| db.iterator_cf(cf, rocksdb::IteratorMode::Start).next().is_none();
            if !(empty(log_cf(db)?) && empty(meta_cf(db)?)) {
                return Err(Error::NotRocklog {
                    path: path.to_owned(),
                    reason: "it has rocklog's column families but no format-version record".into(),
                });
            }
            let mut wo = rocksdb::WriteOptions::default();
            wo.set_sync(true);
            db.put_cf_opt(meta_cf(db)?, FORMAT_KEY, codec::encode_format_version(), &wo)?;
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::storage::codec::MetaTag;

    /// What an interrupted first open left, and how to leave it.
    type Step = (&'static str, fn(&Path));

    /// Leaves `dir` as a first open killed at some moment would, marker included.
    fn interrupted(dir: &Path, rocksdb_part: impl FnOnce(&Path)) {
        begin_creation(dir).unwrap();
        rocksdb_part(dir);
    }

    fn bare_rocksdb(dir: &Path, cfs: &[&str]) {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        drop(DB::open_cf(&opts, dir, cfs).unwrap());
    }

    #[test]
    fn a_first_open_interrupted_at_any_step_is_finished_by_the_next() {
        let steps: [Step; 4] = [
            ("only the info log", |d| std::fs::write(d.join("LOG"), "started").unwrap()),
            ("RocksDB's first files, no CURRENT yet", |d| {
                for file in ["LOCK", "IDENTITY", "MANIFEST-000001", "000000.dbtmp"] {
                    std::fs::write(d.join(file), "").unwrap();
                }
            }),
            ("only the default column family", |d| bare_rocksdb(d, &[])),
            ("`log` but not `meta`", |d| bare_rocksdb(d, &[LOG_CF])),
        ];
        for (what, step) in steps {
            let dir = tempfile::tempdir().unwrap();
            interrupted(dir.path(), step);
            assert!(
                open_read_only(dir.path()).is_err(),
                "{what}: an unfinished directory is not offered offline"
            );
            let (db, groups, _, _) = open(&Config::new(dir.path())).unwrap_or_else(|e| panic!("{what}: {e}"));
            assert!(groups.is_empty(), "{what}");
            assert!(!dir.path().join(CREATING_MARKER).exists(), "{what}: the marker is gone once complete");
            drop(db);
            assert!(open_read_only(dir.path()).is_ok(), "{what}: complete now");
        }
    }

    #[test]
    fn a_version_1_directory_is_upgraded_on_open_and_keeps_its_data() {
        let dir = tempfile::tempdir().unwrap();
        let (db, _, _, _) = open(&Config::new(dir.path())).unwrap();
        let mut batch = rocksdb::WriteBatch::default();
        batch.put_cf(meta_cf(&db).unwrap(), codec::meta_key(5, MetaTag::Group), b"");
        let v1 = crate::records::FormatVersion { version: 1 };
        batch.put_cf(meta_cf(&db).unwrap(), FORMAT_KEY, prost::Message::encode_to_vec(&v1));
        db.write(batch).unwrap();
        drop(db);
        assert_eq!(open_read_only(dir.path()).unwrap().1, 1, "offline tools read version 1 as is");
        let (db, groups, _, _) = open(&Config::new(dir.path())).unwrap();
        assert!(groups.contains_key(&5));
        assert_eq!(read_format(&db).unwrap(), Some(FORMAT_VERSION));
    }

    #[test]
    fn nested_missing_directories_are_created() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("a/b/c");
        create_dir_durably(&dir).unwrap();
        assert!(dir.is_dir());
        create_dir_durably(&dir).unwrap(); // idempotent
        std::fs::write(root.path().join("file"), "x").unwrap();
        let under_file = root.path().join("file/d");
        assert!(create_dir_durably(&under_file).is_err(), "a path under a file is refused");
    }

    #[test]
    fn without_the_marker_a_foreign_directory_is_still_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("LOG"), "someone else's").unwrap();
        assert!(matches!(open(&Config::new(dir.path())), Err(Error::NotRocklog { .. })));
        let other = tempfile::tempdir().unwrap();
        bare_rocksdb(other.path(), &[]);
        assert!(matches!(open(&Config::new(other.path())), Err(Error::NotRocklog { .. })));
    }
}
