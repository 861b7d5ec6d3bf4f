//! Faults from outside the engine, each met with a typed error and no panic, hang or loss:
//! a disk that fills up, directories the engine may not open (read-only, locked by another
//! process, missing a column family, under a file), and a record damaged on disk.
//!
//! The full-disk and read-only tests mount file systems, which needs root: without it (or
//! when `mount` fails) they print exactly why and skip.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use rocklog::{Config, Entry, Error, HardState, LogStore};
use tokio::time::timeout;

const BOUND: Duration = Duration::from_secs(30);

fn open(dir: &Path) -> LogStore {
    LogStore::start(Config::new(dir)).expect("open engine")
}

/// Entries `range` in `term`, each payload naming its index and term.
fn ents(range: std::ops::Range<u64>, term: u64) -> Vec<Entry> {
    range.map(|i| Entry::new(i, term, format!("entry {i} of term {term}"))).collect()
}

fn run(program: &str, args: &[&str]) -> Result<Output, String> {
    Command::new(program).args(args).output().map_err(|e| format!("cannot run {program}: {e}"))
}

fn rocklog(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rocklog")).args(args).arg(dir).output().expect("run rocklog")
}

/// Why this process cannot mount file systems, if it cannot.
fn cannot_mount() -> Option<String> {
    match run("id", &["-u"]) {
        Ok(out) if String::from_utf8_lossy(&out.stdout).trim() == "0" => None,
        Ok(out) => Some(format!("not running as root (uid {})", String::from_utf8_lossy(&out.stdout).trim())),
        Err(e) => Some(e),
    }
}

/// A file system mounted on a fresh directory for one test, unmounted on drop — also when
/// the test fails, so no mount outlives it.
struct Mount {
    point: PathBuf,
    _parent: tempfile::TempDir,
}

impl Mount {
    /// `mount ARGS... POINT`, or `Err` saying why it could not be done.
    fn new(args: &[&str]) -> Result<Mount, String> {
        if let Some(why) = cannot_mount() {
            return Err(why);
        }
        let parent = tempfile::tempdir().map_err(|e| e.to_string())?;
        let point = parent.path().join("mnt");
        std::fs::create_dir(&point).map_err(|e| e.to_string())?;
        let point_str = point.to_str().ok_or("non-UTF-8 temp path")?;
        let out = run("mount", &[args, &[point_str]].concat())?;
        if !out.status.success() {
            return Err(format!(
                "`mount {}` failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(Mount { point, _parent: parent })
    }

    /// A tmpfs of `size` (e.g. "8m").
    fn tmpfs(size: &str) -> Result<Mount, String> {
        Mount::new(&["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
    }

    /// A read-only view of `dir` (a bind mount, remounted read-only).
    fn read_only_view(dir: &Path) -> Result<Mount, String> {
        let mount = Mount::new(&["--bind", dir.to_str().ok_or("non-UTF-8 temp path")?])?;
        let point = mount.point.to_str().ok_or("non-UTF-8 temp path")?.to_owned();
        let out = run("mount", &["-o", "remount,bind,ro", &point])?;
        if !out.status.success() {
            return Err(format!("read-only remount failed: {}", String::from_utf8_lossy(&out.stderr).trim()));
        }
        Ok(mount)
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let point = self.point.to_string_lossy().into_owned();
        let ok = run("umount", &[&point]).is_ok_and(|o| o.status.success());
        if !ok {
            // Something still has a file open there: detach it now, it goes when released.
            let _ = run("umount", &["-l", &point]);
        }
    }
}

macro_rules! mount_or_skip {
    ($mount:expr, $test:literal) => {
        match $mount {
            Ok(m) => m,
            Err(why) => {
                eprintln!("SKIPPED {}: {why}", $test);
                return;
            }
        }
    };
}

/// Every file under `dir` with its contents, for "nothing changed" checks (a
/// subdirectory, such as RocksDB's `archive/`, as the listing of its own contents).
fn contents(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let data = if e.file_type().unwrap().is_dir() {
                format!("{:?}", contents(&e.path())).into_bytes()
            } else {
                std::fs::read(e.path()).unwrap()
            };
            (e.file_name().to_string_lossy().into_owned(), data)
        })
        .collect();
    files.sort();
    files
}

/// Copies every file under `from` into `to`, subdirectories included (`cp -r`).
fn copy_tree(from: &Path, to: &Path) {
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_tree(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// Writes a small history and shuts the engine down: group 1 holds 1..=20, group 2 1..=5.
async fn build(dir: &Path) {
    let store = open(dir);
    store.group(1).append(&ents(1..21, 1)).await.unwrap();
    store.group(1).save_hard_state(HardState { term: 1, vote: Some(1), commit: 20 }).await.unwrap();
    store.group(2).append(&ents(1..6, 1)).await.unwrap();
    store.shutdown().await.unwrap();
}

/// Changes the directory with raw RocksDB, below the engine (keys: group u64 BE ‖ index
/// u64 BE in `log`, group ‖ tag in `meta`).
fn plant(dir: &Path, damage: impl FnOnce(&rocksdb::DB)) {
    let db = rocksdb::DB::open_cf(&rocksdb::Options::default(), dir, ["log", "meta"]).unwrap();
    damage(&db);
}

fn log_key(group: u64, index: u64) -> Vec<u8> {
    [group.to_be_bytes(), index.to_be_bytes()].concat()
}

// ----- a full disk -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_fails_writes_typed_poisons_the_engine_and_loses_nothing_acknowledged() {
    // 8 MiB: the engine opens in well under 1 MiB, and the default 64 MiB memtable never
    // flushes, so what fills the disk is the WAL of the appends — deterministic.
    let disk = mount_or_skip!(Mount::tmpfs("8m"), "full disk");
    let data = disk.point.join("data");
    let store = LogStore::start(Config::new(&data)).unwrap();
    for g in 1..=4 {
        store.group(g).save_hard_state(HardState { term: 1, vote: Some(g), commit: 0 }).await.unwrap();
    }

    // Four proposers append 64 KiB entries until the disk is full. Every write gets an
    // answer; the first failure of each is WriteFailed (its batch hit the full disk) or
    // Poisoned (another batch did first).
    let payload = bytes::Bytes::from(vec![0xAB; 64 << 10]);
    let mut tasks = Vec::new();
    for g in 1..=4u64 {
        let (group, payload) = (store.group(g), payload.clone());
        tasks.push(tokio::spawn(async move {
            let mut acked = 0u64;
            loop {
                // 8 MiB holds ~120 such entries in all; 1000 per group means writes never fail.
                assert!(acked < 1000, "group {g}: the 8 MiB disk never filled");
                let entry = Entry::new(acked + 1, 1, payload.clone());
                match timeout(BOUND, group.append(&[entry])).await.expect("an append hung on a full disk") {
                    Ok(()) => acked += 1,
                    Err(e) => return (acked, e),
                }
            }
        }));
    }
    let mut acked = Vec::new();
    let mut write_failed = 0;
    for t in tasks {
        let (n, e) = t.await.unwrap();
        match &e {
            Error::WriteFailed(m) => {
                assert!(m.contains("No space left on device"), "{m}");
                write_failed += 1;
            }
            Error::Poisoned(m) => assert!(m.contains("No space left on device"), "{m}"),
            other => panic!("expected WriteFailed or Poisoned, got {other:?}"),
        }
        acked.push(n);
    }
    assert!(write_failed >= 1, "the batch that hit the full disk reported WriteFailed");
    assert!(acked.iter().sum::<u64>() > 10, "{acked:?}");

    // Poisoned: every later write fails at once, reads keep working and show exactly the
    // acknowledged entries.
    assert!(store.is_poisoned());
    assert!(matches!(store.group(1).append(&ents(1000..1001, 1)).await, Err(Error::Poisoned(_))));
    assert!(matches!(store.group(9).create().await, Err(Error::Poisoned(_))));
    assert!(matches!(store.flush().await, Err(Error::Poisoned(_))));
    for (g, &n) in (1..=4u64).zip(&acked) {
        assert_eq!(store.group(g).last_index().unwrap(), (n > 0).then_some(n));
        assert_eq!(store.group(g).entries(.., None).unwrap().len() as u64, n);
    }
    timeout(BOUND, store.shutdown()).await.expect("shutdown hung on a full disk").unwrap();
    drop(store);

    // Move the directory to a disk with room, as an operator would, and reopen it.
    let bigger = tempfile::tempdir().unwrap();
    copy_tree(&data, bigger.path());
    drop(disk);
    let store = open(bigger.path());
    for (g, &n) in (1..=4u64).zip(&acked) {
        let group = store.group(g);
        assert_eq!(group.hard_state().unwrap(), Some(HardState { term: 1, vote: Some(g), commit: 0 }));
        let entries = group.entries(.., None).unwrap();
        // The failed append's fate is unknown (WriteFailed says so); nothing acknowledged
        // may be missing.
        assert!(entries.len() as u64 == n || entries.len() as u64 == n + 1, "group {g}: {n} acked");
        for (i, e) in entries.iter().enumerate() {
            assert_eq!((e.index, e.term, &e.payload), (i as u64 + 1, 1, &payload), "group {g}");
        }
        // Writable again.
        let next = entries.len() as u64 + 1;
        group.append(&[Entry::new(next, 2, "after the move")]).await.unwrap();
    }
    store.shutdown().await.unwrap();
    let out = rocklog(&["check"], bigger.path());
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
}

// ----- directories the engine may not open -----

/// `dir` made read-only for one test: as root (which ignores permission bits) a read-only
/// bind mount of it, otherwise `chmod 0555` on it and `0444` on its files; undone on drop.
enum ReadOnly {
    Mounted(Mount),
    Chmod(PathBuf),
}

impl ReadOnly {
    fn new(dir: &Path) -> Result<ReadOnly, String> {
        if cannot_mount().is_none() {
            return Mount::read_only_view(dir).map(ReadOnly::Mounted);
        }
        chmod_tree(dir, 0o555, 0o444).map_err(|e| format!("chmod failed: {e}"))?;
        Ok(ReadOnly::Chmod(dir.to_owned()))
    }

    fn path(&self) -> &Path {
        match self {
            ReadOnly::Mounted(m) => &m.point,
            ReadOnly::Chmod(dir) => dir,
        }
    }

    /// What the engine must report for it.
    fn kind(&self) -> std::io::ErrorKind {
        match self {
            ReadOnly::Mounted(_) => std::io::ErrorKind::ReadOnlyFilesystem,
            ReadOnly::Chmod(_) => std::io::ErrorKind::PermissionDenied,
        }
    }
}

impl Drop for ReadOnly {
    fn drop(&mut self) {
        if let ReadOnly::Chmod(dir) = self {
            let _ = chmod_tree(dir, 0o755, 0o644);
        }
    }
}

fn chmod_tree(dir: &Path, dir_mode: u32, file_mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let set = |p: &Path, mode| std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode));
    if dir_mode & 0o200 != 0 {
        set(dir, dir_mode)?;
    }
    for e in std::fs::read_dir(dir)? {
        set(&e?.path(), file_mode)?;
    }
    set(dir, dir_mode)
}

#[tokio::test]
async fn a_read_only_directory_is_refused_with_a_typed_error_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    build(&data).await;
    let before = contents(&data);
    let view = mount_or_skip!(ReadOnly::new(&data), "read-only directory");

    match LogStore::open(Config::new(view.path())) {
        Err(Error::Io { path, source }) => {
            assert_eq!(source.kind(), view.kind(), "{source}");
            assert_eq!(path, view.path());
        }
        other => panic!("expected Io({:?}), got {other:?}", view.kind()),
    }
    // The offline tools only read, so they still work there.
    let out = rocklog(&["check"], view.path());
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    drop(view);
    assert_eq!(contents(&data), before, "the refused open changed the directory");

    // An empty read-only directory cannot become a new engine either.
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let view = mount_or_skip!(ReadOnly::new(&empty), "read-only directory");
    let result = LogStore::open(Config::new(view.path()));
    assert!(
        matches!(&result, Err(Error::Io { source, .. }) if source.kind() == view.kind()),
        "{:?}",
        result.err()
    );
    drop(view);
    assert_eq!(std::fs::read_dir(&empty).unwrap().count(), 0);
}

/// A `rocklog bench` child process holding an engine open under its `--dir`; killed (by
/// its own pid) on drop.
struct Holder(Child);

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The first directory at or below `dir` holding a RocksDB `OPTIONS-*` file.
fn find_database(dir: &Path) -> Option<PathBuf> {
    let names = std::fs::read_dir(dir).ok()?.flatten().map(|e| e.file_name().to_string_lossy().into_owned());
    if names.into_iter().any(|n| n.starts_with("OPTIONS-")) {
        return Some(dir.to_owned());
    }
    std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .filter(|e| e.path().is_dir())
        .find_map(|e| find_database(&e.path()))
}

#[tokio::test]
async fn a_directory_held_by_another_process_is_locked() {
    let root = tempfile::tempdir().unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_rocklog"))
        .args(["bench", "--backends", "rocklog", "--proposers", "1", "--groups", "1", "--entry-bytes", "16"])
        .args(["--duration", "120s", "--json", "--dir"])
        .arg(root.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut holder = Holder(child);
    // RocksDB takes the LOCK first and writes its OPTIONS file last, after the column
    // families: once that is there, the child holds a complete rocklog directory
    // (somewhere under --dir: the layout is the bench's business).
    let started = Instant::now();
    let data = loop {
        if let Some(db) = find_database(root.path()) {
            break db;
        }
        assert!(holder.0.try_wait().unwrap().is_none(), "the bench child exited early");
        assert!(started.elapsed() < Duration::from_secs(60), "the bench child never opened its directory");
        std::thread::sleep(Duration::from_millis(20));
    };
    match LogStore::open(Config::new(&data)) {
        Err(e @ Error::Locked { .. }) => {
            let text = e.to_string();
            assert!(
                text.contains("is locked by another engine") && text.contains(data.to_str().unwrap()),
                "{text}"
            );
        }
        other => panic!("expected Locked, got {other:?}"),
    }
    assert!(holder.0.try_wait().unwrap().is_none(), "the refused open disturbed the holder");

    // Once the holder is gone (killed: no clean shutdown), the directory opens and checks
    // clean.
    drop(holder);
    open(&data).shutdown().await.unwrap();
    let out = rocklog(&["check"], &data);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
}

#[test]
fn a_rocksdb_directory_missing_a_column_family_is_refused_untouched() {
    for (present, missing) in [("log", "meta"), ("meta", "log")] {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut opts = rocksdb::Options::default();
            opts.create_if_missing(true);
            opts.create_missing_column_families(true);
            let db = rocksdb::DB::open_cf(&opts, dir.path(), [present]).unwrap();
            db.put_cf(db.cf_handle(present).unwrap(), b"k", b"v").unwrap();
        }
        let before = contents(dir.path());
        match LogStore::open(Config::new(dir.path())) {
            Err(Error::NotRocklog { reason, .. }) => {
                assert!(reason.contains(&format!("column family `{missing}` is missing")), "{reason}");
            }
            other => panic!("missing {missing}: expected NotRocklog, got {other:?}"),
        }
        assert_eq!(contents(dir.path()), before, "missing {missing}: the directory changed");
        let out = rocklog(&["check"], dir.path());
        assert_eq!(out.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("`{missing}` is missing")));
    }
}

#[test]
fn a_path_under_a_file_is_an_io_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"keep me").unwrap();
    match LogStore::open(Config::new(file.join("data"))) {
        Err(Error::Io { source, .. }) => assert_eq!(source.kind(), std::io::ErrorKind::NotADirectory),
        other => panic!("expected Io(NotADirectory), got {other:?}"),
    }
    assert_eq!(std::fs::read(&file).unwrap(), b"keep me");
}

// ----- a damaged record -----

#[tokio::test]
async fn a_corrupt_entry_is_a_typed_error_naming_group_and_index_and_the_rest_reads() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path()).await;
    plant(dir.path(), |db| db.put_cf(db.cf_handle("log").unwrap(), log_key(1, 12), [0xFF; 7]).unwrap());

    let out = rocklog(&["check"], dir.path());
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("group 1: index 12:"), "{text}");

    let store = open(dir.path());
    let g = store.group(1);
    let is_12 = |r: &Error| {
        matches!(r, Error::Corruption { group: 1, what, .. } if what == "index 12")
            && r.to_string().starts_with("corruption in group 1 at index 12")
    };
    assert!(g.entry(12).is_err_and(|e| is_12(&e)));
    assert!(g.term(12).is_err_and(|e| is_12(&e)));
    assert!(g.entries(10..15, None).is_err_and(|e| is_12(&e)));
    assert!(g.entries(.., None).is_err_and(|e| is_12(&e)));
    assert!(g.entries(12..=12, None).is_err_and(|e| is_12(&e)));
    // Everything around it reads.
    assert_eq!(g.entries(1..12, None).unwrap().len(), 11);
    assert_eq!(g.entries(13.., None).unwrap().len(), 8);
    assert_eq!(g.entry(11).unwrap().map(|e| e.index), Some(11));
    assert_eq!(g.term(20).unwrap(), Some(1));
    assert_eq!(store.group(2).entries(.., None).unwrap().len(), 5);
    assert_eq!(g.last_index().unwrap(), Some(20));
    // Raft's repair, overwriting the suffix from the damaged index, clears it.
    g.append(&ents(12..14, 2)).await.unwrap();
    assert_eq!(g.entries(.., None).unwrap().len(), 13);
    store.shutdown().await.unwrap();
}

#[tokio::test]
async fn damage_that_recovery_reads_fails_the_open_with_a_typed_error() {
    use prost::Message;
    // The last entry (recovery reads its term), a record claiming another index, and a
    // hard state that does not decode.
    let cases: [(&str, u64, Vec<u8>, &str); 3] = [
        ("log", 20, vec![0xFF; 5], "corruption in group 1 at index 20"),
        ("log", 20, Entry::new(19, 1, "moved").encode_to_vec(), "record claims index 19"),
        ("meta", 0, vec![0x08, 0xFF], "corruption in group 1 at hard state"),
    ];
    for (cf, index, value, expected) in cases {
        let dir = tempfile::tempdir().unwrap();
        build(dir.path()).await;
        let key = if cf == "log" { log_key(1, index) } else { [&1u64.to_be_bytes()[..], &[2]].concat() };
        plant(dir.path(), |db| db.put_cf(db.cf_handle(cf).unwrap(), key, &value).unwrap());
        match LogStore::open(Config::new(dir.path())) {
            Err(e @ Error::Corruption { group: 1, .. }) => assert!(e.to_string().contains(expected), "{e}"),
            other => panic!("{expected}: expected Corruption, got {other:?}"),
        }
        // The failed open released the directory: the offline checker reads it.
        let out = rocklog(&["check"], dir.path());
        assert_eq!(out.status.code(), Some(1), "{expected}");
    }
}
