//! Semantics of the crash filesystem (`rocklog_testkit::crashfs`): a table of cases, each
//! doing file operations through `std::fs` / `std::os::unix` / `nix` on a fresh mount,
//! then `crash()`, then asserting exactly what survived.
//!
//! Needs root and `/dev/fuse`; without them every test prints `SKIPPED <test>: <reason>`
//! and passes, unless `ROCKLOG_REQUIRE_FUSE=1` (CI), which turns that into a failure.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::fcntl::{FallocateFlags, FcntlArg, RenameFlags, fallocate, fcntl, renameat2};
use nix::libc;
use rocklog_testkit::crashfs::{Counters, CrashError, TempMount, skip_if_unavailable};

/// A crash filesystem on a temporary directory, with the file operations the cases use.
struct Mnt(TempMount);

impl std::ops::Deref for Mnt {
    type Target = TempMount;
    fn deref(&self) -> &TempMount {
        &self.0
    }
}

impl std::ops::DerefMut for Mnt {
    fn deref_mut(&mut self) -> &mut TempMount {
        &mut self.0
    }
}

impl Mnt {
    fn new() -> Mnt {
        Mnt(TempMount::new().unwrap())
    }

    fn p(&self, rel: &str) -> PathBuf {
        self.fs.root().join(rel)
    }

    fn crash(&mut self) {
        self.fs.crash().unwrap();
    }

    /// Creates or truncates `rel` and writes `bytes`, nothing synced.
    fn write(&self, rel: &str, bytes: &[u8]) {
        File::create(self.p(rel)).unwrap().write_all(bytes).unwrap();
    }

    /// Like `write`, then fsyncs the file (not its directory).
    fn write_synced(&self, rel: &str, bytes: &[u8]) {
        let mut f = File::create(self.p(rel)).unwrap();
        f.write_all(bytes).unwrap();
        f.sync_all().unwrap();
    }

    /// fsyncs directory `rel` ("" is the root).
    fn sync_dir(&self, rel: &str) {
        File::open(self.p(rel)).unwrap().sync_all().unwrap();
    }

    /// `write_synced`, then fsyncs the parent directory: all of it durable.
    fn durable_file(&self, rel: &str, bytes: &[u8]) {
        self.write_synced(rel, bytes);
        let parent = Path::new(rel).parent().and_then(Path::to_str).unwrap_or("");
        self.sync_dir(parent);
    }

    fn read(&self, rel: &str) -> Option<Vec<u8>> {
        match fs::read(self.p(rel)) {
            Ok(bytes) => Some(bytes),
            Err(e) if e.kind() == ErrorKind::NotFound => None,
            Err(e) => panic!("read {rel}: {e}"),
        }
    }

    fn names(&self, rel: &str) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(self.p(rel))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    fn open_rw(&self, rel: &str) -> File {
        OpenOptions::new().read(true).write(true).open(self.p(rel)).unwrap()
    }
}

type Case = fn(&mut Mnt);

/// Every case runs on its own fresh mount (some mount more themselves).
const CASES: &[(&str, Case)] = &[
    ("unsynced write is lost", unsynced_write_lost),
    ("fsynced write stays", fsynced_write_stays),
    ("file synced but directory not: gone", file_without_dir_sync_gone),
    ("rename durable only with both parents synced", rename_needs_both_parents),
    ("rename in one directory: one fsync", rename_same_dir),
    ("create_dir_all needs every parent synced", nested_dirs),
    ("fdatasync makes data and size durable", fdatasync_size),
    ("truncate durable only after fsync", truncate),
    ("unlinked open file keeps working; unlink durable only with dir sync", unlink_open_file),
    ("fcntl lock of a killed holder is free after crash", lock_released_by_crash),
    ("fallocate not durable until synced", fallocate_needs_sync),
    ("copy_file_range goes through write, not durable", copy_file_range_not_durable),
    ("symlink, hard link, fifo durable with their directory", links_and_nodes),
    ("renameat2 NOREPLACE and EXCHANGE honored, WHITEOUT refused", rename_flags),
    ("torn tail keeps a seeded prefix of the last write", torn_tail),
    ("fsync EIO fault: error returned, data never durable", fsync_eio),
    ("ENOSPC on write while set", enospc),
    ("crash with a file open: harness-bug error, mount intact", crash_with_open_file),
    ("counters count", counters),
];

#[test]
fn semantics() {
    if skip_if_unavailable("semantics") {
        return;
    }
    let mut failed = Vec::new();
    for (name, case) in CASES {
        let start = Instant::now();
        if catch_unwind(AssertUnwindSafe(|| case(&mut Mnt::new()))).is_ok() {
            println!("ok   {name} ({:?})", start.elapsed());
        } else {
            println!("FAIL {name}");
            failed.push(*name);
        }
    }
    assert!(failed.is_empty(), "failed cases: {failed:?}");
}

fn unsynced_write_lost(m: &mut Mnt) {
    m.durable_file("f", b"");
    m.write("f", b"hello");
    m.write("never-synced", b"x");
    assert_eq!(m.read("f").unwrap(), b"hello");
    m.crash();
    assert_eq!(m.read("f").unwrap(), b"", "the entry was durable, the data was not");
    assert_eq!(m.names(""), ["f"]);
}

fn fsynced_write_stays(m: &mut Mnt) {
    m.durable_file("f", b"hello");
    m.crash();
    assert_eq!(m.read("f").unwrap(), b"hello");
    // Appended and synced again: all of it stays; a later unsynced append does not.
    let mut f = OpenOptions::new().append(true).open(m.p("f")).unwrap();
    f.write_all(b" world").unwrap();
    f.sync_all().unwrap();
    f.write_all(b"!!!").unwrap();
    drop(f);
    m.crash();
    assert_eq!(m.read("f").unwrap(), b"hello world");
}

fn file_without_dir_sync_gone(m: &mut Mnt) {
    fs::create_dir(m.p("d")).unwrap();
    m.sync_dir("");
    m.sync_dir("d");
    m.write_synced("d/f", b"synced data");
    m.crash();
    assert_eq!(m.read("d/f"), None);
    assert!(m.names("d").is_empty());
}

/// a/f durable, b durable and empty.
fn rename_setup() -> Mnt {
    let m = Mnt::new();
    fs::create_dir(m.p("a")).unwrap();
    fs::create_dir(m.p("b")).unwrap();
    m.sync_dir("");
    m.sync_dir("b");
    m.durable_file("a/f", b"payload");
    m
}

fn rename_needs_both_parents(_: &mut Mnt) {
    // (sync a, sync b) -> (a/f survives, b/g survives)
    for (sync_a, sync_b, keeps_a, keeps_b) in [
        (false, false, true, false),
        (true, false, false, false),
        (false, true, true, true),
        (true, true, false, true),
    ] {
        let mut m = rename_setup();
        fs::rename(m.p("a/f"), m.p("b/g")).unwrap();
        if sync_a {
            m.sync_dir("a");
        }
        if sync_b {
            m.sync_dir("b");
        }
        m.crash();
        let case = format!("sync a: {sync_a}, sync b: {sync_b}");
        assert_eq!(m.read("a/f").is_some(), keeps_a, "a/f, {case}");
        assert_eq!(m.read("b/g").is_some(), keeps_b, "b/g, {case}");
        for rel in ["a/f", "b/g"] {
            if let Some(bytes) = m.read(rel) {
                assert_eq!(bytes, b"payload", "{rel}, {case}");
            }
        }
        if keeps_a && keeps_b {
            // Both names of one inode: only the destination's side was made durable.
            assert_eq!(fs::metadata(m.p("b/g")).unwrap().nlink(), 2);
        }
    }
}

fn rename_same_dir(m: &mut Mnt) {
    m.durable_file("CURRENT", b"old");
    m.write_synced("CURRENT.tmp", b"new");
    fs::rename(m.p("CURRENT.tmp"), m.p("CURRENT")).unwrap();
    m.crash();
    assert_eq!(m.read("CURRENT").unwrap(), b"old");
    assert_eq!(m.names(""), ["CURRENT"]);
    m.write_synced("CURRENT.tmp", b"new");
    fs::rename(m.p("CURRENT.tmp"), m.p("CURRENT")).unwrap();
    m.sync_dir("");
    m.crash();
    assert_eq!(m.read("CURRENT").unwrap(), b"new");
    assert_eq!(m.names(""), ["CURRENT"]);
}

fn nested_dirs(m: &mut Mnt) {
    fs::create_dir_all(m.p("a/b/c")).unwrap();
    m.sync_dir("a/b");
    m.sync_dir("a");
    m.crash();
    assert!(m.names("").is_empty(), "the root was never synced: nothing below it survives");
    fs::create_dir_all(m.p("a/b/c")).unwrap();
    m.sync_dir("");
    m.crash();
    assert_eq!(m.names(""), ["a"]);
    assert!(m.names("a").is_empty());
    fs::create_dir_all(m.p("a/b/c")).unwrap();
    m.sync_dir("a");
    m.crash();
    assert_eq!(m.names("a"), ["b"]);
    assert!(m.names("a/b").is_empty());
    fs::create_dir_all(m.p("a/b/c")).unwrap();
    m.sync_dir("a/b");
    m.crash();
    assert_eq!(m.names("a/b"), ["c"]);
}

fn fdatasync_size(m: &mut Mnt) {
    m.durable_file("d", b"");
    let mut f = m.open_rw("d");
    f.write_all(&[7; 100]).unwrap();
    f.sync_data().unwrap();
    f.set_len(300).unwrap();
    f.sync_data().unwrap();
    f.write_all(b"unsynced").unwrap();
    drop(f);
    m.crash();
    let data = m.read("d").unwrap();
    assert_eq!(data.len(), 300);
    assert_eq!(&data[..100], &[7; 100]);
    assert!(data[100..].iter().all(|b| *b == 0));
}

fn truncate(m: &mut Mnt) {
    m.durable_file("t", b"0123456789");
    m.open_rw("t").set_len(3).unwrap();
    assert_eq!(m.read("t").unwrap(), b"012");
    m.crash();
    assert_eq!(m.read("t").unwrap(), b"0123456789", "truncate not synced");
    let f = m.open_rw("t");
    f.set_len(3).unwrap();
    f.sync_all().unwrap();
    drop(f);
    m.crash();
    assert_eq!(m.read("t").unwrap(), b"012");
}

fn unlink_open_file(m: &mut Mnt) {
    m.durable_file("u", b"keep me");
    let mut r = File::open(m.p("u")).unwrap();
    fs::remove_file(m.p("u")).unwrap();
    assert_eq!(m.read("u"), None);
    let mut s = String::new();
    r.read_to_string(&mut s).unwrap();
    assert_eq!(s, "keep me", "the opener keeps reading");
    drop(r);
    m.crash();
    assert_eq!(m.read("u").unwrap(), b"keep me", "the unlink was never durable");

    let mut r = File::open(m.p("u")).unwrap();
    fs::remove_file(m.p("u")).unwrap();
    m.sync_dir("");
    let mut s = String::new();
    r.read_to_string(&mut s).unwrap();
    assert_eq!(s, "keep me");
    drop(r);
    m.crash();
    assert_eq!(m.read("u"), None, "the unlink was made durable");
}

/// The child side of `lock_released_by_crash`: run only when that case re-runs this test
/// binary with the lock file in this variable.
const LOCK_ENV: &str = "CRASHFS_TEST_LOCK_FILE";

fn flock(kind: i32) -> libc::flock {
    libc::flock {
        l_type: i16::try_from(kind).unwrap(),
        l_whence: i16::try_from(libc::SEEK_SET).unwrap(),
        l_start: 0,
        l_len: 0,
        l_pid: 0,
    }
}

#[test]
fn lock_holder_child() {
    let Some(path) = std::env::var_os(LOCK_ENV) else { return };
    let f = OpenOptions::new().read(true).write(true).open(path).unwrap();
    fcntl(&f, FcntlArg::F_SETLK(&flock(libc::F_WRLCK))).unwrap();
    println!("LOCKED");
    std::io::stdout().flush().unwrap();
    loop {
        std::thread::sleep(Duration::from_secs(60));
    }
}

fn lock_released_by_crash(m: &mut Mnt) {
    m.durable_file("LOCK", b"");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "lock_holder_child", "--nocapture", "--test-threads=1"])
        .env(LOCK_ENV, m.p("LOCK"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    // libtest may print "test lock_holder_child ... " on the same line first.
    while !lines.next().expect("the child ended before locking").unwrap().ends_with("LOCKED") {}
    let f = m.open_rw("LOCK");
    let mut probe = flock(libc::F_WRLCK);
    fcntl(&f, FcntlArg::F_GETLK(&mut probe)).unwrap();
    assert_eq!(i32::from(probe.l_type), libc::F_WRLCK, "the child's lock is visible");
    assert_eq!(u32::try_from(probe.l_pid).unwrap(), child.id());
    assert!(fcntl(&f, FcntlArg::F_SETLK(&flock(libc::F_WRLCK))).is_err(), "held by the child");
    drop(f);
    child.kill().unwrap();
    child.wait().unwrap();
    m.crash();
    let f = m.open_rw("LOCK");
    fcntl(&f, FcntlArg::F_SETLK(&flock(libc::F_WRLCK))).expect("free after the crash");
}

fn fallocate_needs_sync(m: &mut Mnt) {
    m.durable_file("fa", b"");
    let f = m.open_rw("fa");
    fallocate(&f, FallocateFlags::empty(), 0, 8192).unwrap();
    fallocate(&f, FallocateFlags::FALLOC_FL_KEEP_SIZE, 0, 65536).unwrap();
    assert_eq!(f.metadata().unwrap().len(), 8192);
    drop(f);
    m.crash();
    assert_eq!(m.read("fa").unwrap().len(), 0);
    let f = m.open_rw("fa");
    fallocate(&f, FallocateFlags::empty(), 0, 8192).unwrap();
    f.sync_all().unwrap();
    drop(f);
    m.crash();
    let data = m.read("fa").unwrap();
    assert_eq!(data.len(), 8192);
    assert!(data.iter().all(|b| *b == 0));
}

fn copy_file_range_not_durable(m: &mut Mnt) {
    let payload: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
    m.durable_file("src", &payload);
    m.durable_file("dst", b"");
    let writes = m.fs.counters().writes;
    let (src, dst) = (File::open(m.p("src")).unwrap(), m.open_rw("dst"));
    let copied = nix::fcntl::copy_file_range(&src, None, &dst, None, payload.len()).unwrap();
    assert_eq!(copied, payload.len());
    drop((src, dst));
    assert_eq!(m.read("dst").unwrap(), payload);
    assert!(m.fs.counters().writes > writes, "the kernel copied through write");
    m.crash();
    assert_eq!(m.read("dst").unwrap(), b"");
}

fn links_and_nodes(m: &mut Mnt) {
    m.durable_file("t", b"target");
    std::os::unix::fs::symlink("t", m.p("s")).unwrap();
    fs::hard_link(m.p("t"), m.p("h")).unwrap();
    nix::unistd::mkfifo(&m.p("p"), nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
    assert_eq!(fs::read(m.p("s")).unwrap(), b"target");
    m.crash();
    assert_eq!(m.names(""), ["t"]);
    assert_eq!(fs::metadata(m.p("t")).unwrap().nlink(), 1);
    std::os::unix::fs::symlink("t", m.p("s")).unwrap();
    fs::hard_link(m.p("t"), m.p("h")).unwrap();
    nix::unistd::mkfifo(&m.p("p"), nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
    m.sync_dir("");
    m.crash();
    assert_eq!(m.names(""), ["h", "p", "s", "t"]);
    assert_eq!(fs::read_link(m.p("s")).unwrap(), Path::new("t"));
    assert_eq!(m.read("h").unwrap(), b"target");
    assert_eq!(fs::metadata(m.p("t")).unwrap().nlink(), 2);
    assert!(fs::symlink_metadata(m.p("p")).unwrap().file_type().is_fifo());
}

fn rename_flags(m: &mut Mnt) {
    m.durable_file("a", b"A");
    m.durable_file("b", b"B");
    let at = nix::fcntl::AT_FDCWD;
    let (a, b) = (m.p("a"), m.p("b"));
    let err = renameat2(at, &a, at, &b, RenameFlags::RENAME_NOREPLACE).unwrap_err();
    assert_eq!(err, nix::errno::Errno::EEXIST);
    renameat2(at, &a, at, &b, RenameFlags::RENAME_EXCHANGE).unwrap();
    assert_eq!((m.read("a").unwrap(), m.read("b").unwrap()), (b"B".to_vec(), b"A".to_vec()));
    let err = renameat2(at, &a, at, &b, RenameFlags::RENAME_WHITEOUT).unwrap_err();
    assert_eq!(err, nix::errno::Errno::EINVAL);
    m.crash();
    assert_eq!(m.read("a").unwrap(), b"A", "the exchange was not durable");
    renameat2(at, &a, at, &b, RenameFlags::RENAME_EXCHANGE).unwrap();
    renameat2(at, &a, at, &m.p("c"), RenameFlags::RENAME_NOREPLACE).unwrap();
    m.sync_dir("");
    m.crash();
    assert_eq!(m.names(""), ["b", "c"]);
    assert_eq!((m.read("b").unwrap(), m.read("c").unwrap()), (b"A".to_vec(), b"B".to_vec()));
}

/// Per seed, on one mount: a file with 4 durable bytes gets 1000 more unsynced, then a
/// crash. Returns the surviving lengths.
fn torn_lengths(seeds: std::ops::Range<u64>, tail: &[u8]) -> Vec<usize> {
    let mut m = Mnt::new();
    let mut lengths = Vec::new();
    for seed in seeds {
        m.fs.set_torn_tail(Some(seed));
        let name = format!("wal-{seed}");
        m.durable_file(&name, b"AAAA");
        let f = m.open_rw(&name);
        f.write_all_at(tail, 4).unwrap();
        drop(f);
        m.crash();
        let data = m.read(&name).unwrap();
        assert!(data.len() >= 4 && data.len() <= 4 + tail.len(), "seed {seed}: {}", data.len());
        assert_eq!(&data[..4], b"AAAA", "seed {seed}: durable bytes intact");
        assert_eq!(&data[4..], &tail[..data.len() - 4], "seed {seed}: a prefix of the write");
        lengths.push(data.len());
    }
    lengths
}

fn torn_tail(m: &mut Mnt) {
    let tail: Vec<u8> = (0..1000u32).map(|i| (i % 253) as u8 + 1).collect();
    let lengths = torn_lengths(0..16, &tail);
    assert!(lengths.iter().any(|l| *l > 4 && *l < 1004), "some write torn mid-way: {lengths:?}");
    let mut distinct = lengths.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert!(distinct.len() > 4, "the prefix length varies with the seed: {lengths:?}");
    assert_eq!(torn_lengths(0..16, &tail), lengths, "same seeds, same tears");
    // Strict mode (the default) keeps nothing unsynced.
    m.durable_file("f", b"AAAA");
    m.open_rw("f").write_all_at(&tail, 4).unwrap();
    m.crash();
    assert_eq!(m.read("f").unwrap(), b"AAAA");
}

fn fsync_eio(m: &mut Mnt) {
    m.durable_file("f", b"");
    let mut f = m.open_rw("f");
    f.write_all(b"data").unwrap();
    m.fs.fail_fsyncs(1);
    let err = f.sync_all().unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EIO));
    drop(f);
    m.crash();
    assert_eq!(m.read("f").unwrap(), b"");
    // A later fsync that succeeds does not write the bytes the failed one dropped.
    let f = m.open_rw("f");
    f.write_all_at(b"AAAA", 0).unwrap();
    m.fs.fail_fsyncs(1);
    assert_eq!(f.sync_data().unwrap_err().raw_os_error(), Some(libc::EIO));
    f.write_all_at(b"BB", 4).unwrap();
    f.sync_data().unwrap();
    assert_eq!(m.read("f").unwrap(), b"AAAABB", "what processes see is unchanged");
    drop(f);
    m.crash();
    assert_eq!(m.read("f").unwrap(), b"\0\0\0\0BB");
    assert_eq!(m.fs.counters().fsync_faults, 2);
}

fn enospc(m: &mut Mnt) {
    m.durable_file("f", b"");
    let mut f = m.open_rw("f");
    m.fs.fail_writes_enospc(true);
    assert_eq!(f.write_all(b"x").unwrap_err().raw_os_error(), Some(libc::ENOSPC));
    assert_eq!(fallocate(&f, FallocateFlags::empty(), 0, 4096).unwrap_err(), nix::errno::Errno::ENOSPC);
    assert_eq!(f.metadata().unwrap().len(), 0);
    m.fs.fail_writes_enospc(false);
    f.write_all(b"x").unwrap();
    f.sync_all().unwrap();
    drop(f);
    assert_eq!(m.fs.counters().write_faults, 2);
    m.crash();
    assert_eq!(m.read("f").unwrap(), b"x");
}

fn crash_with_open_file(m: &mut Mnt) {
    let mut f = File::create(m.p("open")).unwrap();
    let listing = fs::read_dir(m.p("")).unwrap();
    let err = m.fs.crash().unwrap_err();
    assert!(matches!(err, CrashError::FilesOpen(_)));
    let msg = err.to_string();
    assert!(msg.starts_with("harness bug: 2 files still open on the crash filesystem: "), "{msg}");
    assert!(msg.contains("/open") && msg.contains("directory inode 1 /"), "{msg}");
    // Nothing happened: the mount works, the open file too.
    f.write_all(b"still here").unwrap();
    assert_eq!(m.read("open").unwrap(), b"still here");
    drop((f, listing));
    assert_eq!(m.fs.counters().crashes, 0);
    m.crash();
    assert_eq!(m.read("open"), None);
}

fn counters(m: &mut Mnt) {
    let mut f = File::create(m.p("f")).unwrap();
    for chunk in [b"one".as_slice(), b"two", b"three"] {
        f.write_all(chunk).unwrap();
    }
    f.sync_all().unwrap();
    f.sync_data().unwrap();
    drop(f);
    m.sync_dir("");
    let start = Instant::now();
    m.crash();
    let took = start.elapsed();
    let expected =
        Counters { writes: 3, fsyncs: 1, fdatasyncs: 1, fsyncdirs: 1, crashes: 1, ..Counters::default() };
    assert_eq!(m.fs.counters(), expected);
    assert_eq!(m.read("f").unwrap(), b"onetwothree");
    println!("     crash took {took:?}");
}
