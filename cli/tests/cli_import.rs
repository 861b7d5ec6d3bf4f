//! `rocklog import-d-engine`, as an operator runs it, on directories laid out the way
//! d-engine-server 0.2.3's RocksDB storage writes them (built here with raw RocksDB):
//! column family `logs` (u64 BE index → protobuf `Entry`) and `meta` (`hard_state` →
//! bincode `HardState`). It proves the copy is exact (every entry, the hard state, the
//! purge boundary), readable through the d-engine adapter, clean for `rocklog check`, and
//! that every refusal leaves the destination untouched and the source unchanged.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use bytes::Bytes;
use d_engine_core::{HardState as DHardState, LogStore as _, MetaStore as _, StorageEngine as _};
use d_engine_proto::common::{
    AddNode, Entry as DEntry, EntryPayload, LogId as DLogId, MembershipChange, Noop, entry_payload::Payload,
    membership_change::Change,
};
use d_engine_proto::server::election::VotedFor;
use prost_d_engine::Message;
use rocklog::Config;
use rocklog::d_engine::DEngineStorage;

fn command_entry(index: u64, term: u64) -> DEntry {
    let payload = Payload::Command(Bytes::from(format!("put k{index} v{index}")));
    DEntry { index, term, payload: Some(EntryPayload { payload: Some(payload) }) }
}

/// Commands, with a no-op, a membership change and an entry without payload mixed in.
fn d_engine_log(range: std::ops::RangeInclusive<u64>, term_every: u64) -> Vec<DEntry> {
    range
        .map(|i| {
            let term = 1 + i / term_every;
            let payload = match i % 97 {
                0 => Some(Payload::Noop(Noop {})),
                1 => Some(Payload::Config(MembershipChange {
                    change: Some(Change::AddNode(AddNode {
                        node_id: 4,
                        address: "10.0.0.4:9081".into(),
                        status: 1,
                    })),
                })),
                2 => return DEntry { index: i, term, payload: None },
                _ => return command_entry(i, term),
            };
            DEntry { index: i, term, payload: Some(EntryPayload { payload }) }
        })
        .collect()
}

fn voted_hard_state() -> DHardState {
    DHardState {
        current_term: 9,
        voted_for: Some(VotedFor { voted_for_id: 2, voted_for_term: 8, committed: true }),
    }
}

/// Writes a d-engine 0.2.3 directory: `entries` under their BE index (or the raw records
/// of `raw_logs`), `hard_state` as bincode, and whatever `meta` adds.
struct Source<'a> {
    entries: &'a [DEntry],
    hard_state: Option<DHardState>,
    raw_logs: Vec<(Vec<u8>, Vec<u8>)>,
    raw_meta: Vec<(Vec<u8>, Vec<u8>)>,
    cfs: &'a [&'a str],
}

impl Default for Source<'_> {
    fn default() -> Self {
        Source {
            entries: &[],
            hard_state: None,
            raw_logs: Vec::new(),
            raw_meta: Vec::new(),
            cfs: &["logs", "meta"],
        }
    }
}

impl Source<'_> {
    fn write(&self, dir: &Path) {
        let mut opts = rocksdb::Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        opts.set_compression_type(rocksdb::DBCompressionType::Lz4);
        let db = rocksdb::DB::open_cf(&opts, dir, self.cfs).unwrap();
        if let Some(logs) = db.cf_handle("logs") {
            for e in self.entries {
                db.put_cf(&logs, e.index.to_be_bytes(), e.encode_to_vec()).unwrap();
            }
            for (k, v) in &self.raw_logs {
                db.put_cf(&logs, k, v).unwrap();
            }
        }
        if let Some(meta) = db.cf_handle("meta") {
            if let Some(hs) = &self.hard_state {
                db.put_cf(&meta, b"hard_state", bincode::serialize(hs).unwrap()).unwrap();
            }
            for (k, v) in &self.raw_meta {
                db.put_cf(&meta, k, v).unwrap();
            }
        }
        // Part of the data in SST files, the rest only in the WAL, as a stopped node leaves it.
        if let Some(logs) = db.cf_handle("logs") {
            db.flush_cf(&logs).unwrap();
        }
    }
}

struct Dirs {
    _tmp: tempfile::TempDir,
    src: PathBuf,
    dst: PathBuf,
}

fn dirs() -> Dirs {
    let tmp = tempfile::tempdir().unwrap();
    let (src, dst) = (tmp.path().join("d-engine"), tmp.path().join("rocklog"));
    Dirs { _tmp: tmp, src, dst }
}

fn import(src: &Path, dst: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rocklog"))
        .arg("import-d-engine")
        .arg(src)
        .arg(dst)
        .args(extra)
        .output()
        .expect("run rocklog")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Every file under `dir` with its size (`None` when `dir` does not exist).
fn listing(dir: &Path) -> Option<BTreeMap<String, u64>> {
    let entries = std::fs::read_dir(dir).ok()?;
    Some(
        entries
            .map(|e| e.unwrap())
            .map(|e| (e.file_name().to_string_lossy().into_owned(), e.metadata().unwrap().len()))
            .collect(),
    )
}

fn open_imported(dst: &Path, group: u64) -> DEngineStorage {
    DEngineStorage::open(Config::new(dst), group).unwrap()
}

#[tokio::test]
async fn imports_every_entry_and_the_exact_hard_state() {
    let d = dirs();
    // More than two write batches (4096 entries each), terms rising every 3000 entries.
    let log = d_engine_log(1..=10_000, 3000);
    Source { entries: &log, hard_state: Some(voted_hard_state()), ..Default::default() }.write(&d.src);
    let src_before = listing(&d.src);

    let out = import(&d.src, &d.dst, &["--group", "3"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "stdout: {stdout}\nstderr: {}", text(&out.stderr));
    assert!(stdout.contains("(group 3)"), "{stdout}");
    assert!(stdout.contains("entries     10000 1..=10000 (terms 1..=4)"), "{stdout}");
    assert!(stdout.contains("purged      none"), "{stdout}");
    assert!(stdout.contains("hard state  term 9, voted for node 2 in term 8 (committed)"), "{stdout}");
    assert!(stdout.contains("verified    10000 entries re-read and equal; rocklog check: clean"), "{stdout}");
    assert_eq!(listing(&d.src), src_before, "the source is opened read-only");

    let check = Command::new(env!("CARGO_BIN_EXE_rocklog")).arg("check").arg(&d.dst).output().unwrap();
    assert!(check.status.success(), "{}", text(&check.stdout));

    let storage = open_imported(&d.dst, 3);
    let (logs, meta) = (storage.log_store(), storage.meta_store());
    assert_eq!(logs.last_index(), 10_000);
    assert_eq!(logs.load_purge_boundary().unwrap(), None);
    assert_eq!(logs.get_entries(1..=10_000).unwrap(), log);
    let hs = meta.load_hard_state().unwrap().unwrap();
    assert_eq!(
        (hs.current_term, hs.voted_for),
        (voted_hard_state().current_term, voted_hard_state().voted_for)
    );
    // The imported log goes on as a d-engine log.
    logs.persist_entries(vec![command_entry(10_001, 4)]).await.unwrap();
    assert_eq!(logs.last_index(), 10_001);
}

/// An import that reported success survives a power loss right after it, whole: the
/// destination (two missing levels deep) is created, written and synced durably. The
/// destination lives on the power-loss filesystem; a power loss there keeps only what was
/// fsynced, files and directory entries alike.
#[test]
fn a_reported_import_survives_a_power_loss_whole() {
    use rocklog_testkit::crashfs::{CrashFs, skip_if_unavailable};
    if skip_if_unavailable("a_reported_import_survives_a_power_loss_whole") {
        return;
    }
    let d = dirs();
    let log = d_engine_log(1..=5_000, 2000);
    Source { entries: &log, hard_state: Some(voted_hard_state()), ..Default::default() }.write(&d.src);
    let mnt = tempfile::tempdir().unwrap();
    let mut fs = CrashFs::mount(mnt.path()).unwrap();
    let dst = fs.root().join("new/rocklog");
    let out = import(&d.src, &dst, &["--group", "3"]);
    assert!(out.status.success(), "{}{}", text(&out.stdout), text(&out.stderr));
    fs.crash().unwrap();

    let storage = open_imported(&dst, 3);
    let (logs, meta) = (storage.log_store(), storage.meta_store());
    assert_eq!(logs.get_entries(1..=5_000).unwrap(), log, "every imported entry");
    let hs = meta.load_hard_state().unwrap().unwrap();
    assert_eq!(
        (hs.current_term, hs.voted_for),
        (voted_hard_state().current_term, voted_hard_state().voted_for)
    );
    drop(storage);
    let check = Command::new(env!("CARGO_BIN_EXE_rocklog")).arg("check").arg(&dst).output().unwrap();
    assert!(check.status.success(), "{}", text(&check.stdout));
}

/// Power lost at moments swept across an import: the destination is never a partial log.
/// It is absent (the import went to `DST.rocklog-import`, which a rerun names and asks to
/// delete), or complete (the verified import was renamed before the power went).
#[test]
fn an_interrupted_import_never_leaves_a_partial_destination() {
    use rocklog_testkit::crashfs::{CrashFs, skip_if_unavailable};
    if skip_if_unavailable("an_interrupted_import_never_leaves_a_partial_destination") {
        return;
    }
    let d = dirs();
    let log = d_engine_log(1..=3_000, 1000);
    Source { entries: &log, hard_state: Some(voted_hard_state()), ..Default::default() }.write(&d.src);
    let (mut absent, mut complete) = (0, 0);
    for attempt in 0..12u64 {
        let mnt = tempfile::tempdir().unwrap();
        let mut fs = CrashFs::mount(mnt.path()).unwrap();
        let dst = fs.root().join("rocklog");
        let mut child = Command::new(env!("CARGO_BIN_EXE_rocklog"))
            .arg("import-d-engine")
            .arg(&d.src)
            .arg(&dst)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(attempt * 40));
        let _ = child.kill();
        child.wait().unwrap();
        fs.crash().unwrap();
        if dst.exists() {
            let storage = open_imported(&dst, 1);
            assert_eq!(storage.log_store().get_entries(1..=3_000).unwrap(), log, "a destination is whole");
            complete += 1;
        } else {
            absent += 1;
            let staging = fs.root().join("rocklog.rocklog-import");
            if staging.exists() {
                let again = import(&d.src, &dst, &[]);
                assert!(!again.status.success());
                assert!(text(&again.stderr).contains("interrupted import"), "{}", text(&again.stderr));
                std::fs::remove_dir_all(&staging).unwrap();
            }
            let again = import(&d.src, &dst, &[]);
            assert!(again.status.success(), "{}", text(&again.stderr));
        }
    }
    println!("interrupted imports: {absent} left no destination, {complete} a complete one");
    assert!(absent > 0, "no kill landed during an import");
}

#[tokio::test]
async fn a_purged_log_gets_its_boundary_recorded_or_marked_term_unknown() {
    // 0.2.3 records no boundary: index first - 1, term 0 ("unknown").
    let d = dirs();
    let log = d_engine_log(51..=100, 60);
    Source { entries: &log, ..Default::default() }.write(&d.src);
    let out = import(&d.src, &d.dst, &[]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("purged      up to index 50 (term unknown"), "{stdout}");
    assert!(stdout.contains("hard state  none"), "{stdout}");
    let storage = open_imported(&d.dst, 1);
    assert_eq!(storage.log_store().load_purge_boundary().unwrap(), Some(DLogId { term: 0, index: 50 }));
    assert_eq!(storage.log_store().get_entries(0..=200).unwrap(), log);
    assert!(storage.meta_store().load_hard_state().unwrap().is_none());
    drop(storage);

    // A later d-engine's `purge_boundary` record is used as it is.
    let d = dirs();
    let boundary = DLogId { term: 1, index: 50 }.encode_to_vec();
    let raw_meta = vec![(b"purge_boundary".to_vec(), boundary)];
    Source { entries: &log, raw_meta, ..Default::default() }.write(&d.src);
    let out = import(&d.src, &d.dst, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("purged      up to 50@1"), "{}", text(&out.stdout));
    let storage = open_imported(&d.dst, 1);
    assert_eq!(storage.log_store().load_purge_boundary().unwrap(), Some(DLogId { term: 1, index: 50 }));
}

#[test]
fn an_empty_log_imports_its_hard_state_alone() {
    let d = dirs();
    let hs = DHardState { current_term: 4, voted_for: None };
    Source { hard_state: Some(hs), ..Default::default() }.write(&d.src);
    let out = import(&d.src, &d.dst, &[]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("entries     0 none"), "{stdout}");
    assert!(stdout.contains("hard state  term 4, no vote"), "{stdout}");
    let storage = open_imported(&d.dst, 1);
    assert_eq!(storage.log_store().last_index(), 0);
    assert_eq!(storage.meta_store().load_hard_state().unwrap().map(|h| h.current_term), Some(4));
}

/// Runs an import that must be refused: non-zero exit, a message naming `reason`, the
/// destination exactly as before (absent, or with the same files), the source unchanged.
fn assert_refused(src: &Path, dst: &Path, reason: &str) {
    let (src_before, dst_before) = (listing(src), listing(dst));
    let out = import(src, dst, &[]);
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "accepted; stdout: {}", text(&out.stdout));
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(reason), "expected {reason:?} in: {stderr}");
    assert_eq!(listing(dst), dst_before, "the destination was touched: {stderr}");
    assert_eq!(listing(src), src_before, "the source changed");
}

#[test]
fn refuses_a_directory_that_is_not_a_d_engine_log() {
    let d = dirs();
    assert_refused(&d.src, &d.dst, "not a RocksDB directory");
    std::fs::create_dir(&d.src).unwrap();
    assert_refused(&d.src, &d.dst, "not a RocksDB directory");

    let d = dirs();
    Source { cfs: &["logs"], ..Default::default() }.write(&d.src);
    assert_refused(&d.src, &d.dst, "column family `meta` is missing");

    // A rocklog directory is not a d-engine one either.
    let d = dirs();
    drop(rocklog::LogStore::start(Config::new(&d.src)).unwrap());
    assert_refused(&d.src, &d.dst, "column family `logs` is missing");
}

#[test]
fn refuses_undecodable_or_inconsistent_records() {
    let log = d_engine_log(1..=10, 100);
    let cases: Vec<(Source, &str)> = vec![
        (
            Source { raw_logs: vec![(11u64.to_be_bytes().to_vec(), vec![0xff; 7])], ..Default::default() },
            "entry 11 does not decode",
        ),
        (
            Source {
                raw_logs: vec![(b"short".to_vec(), command_entry(1, 1).encode_to_vec())],
                ..Default::default()
            },
            "key of 5 bytes",
        ),
        (
            Source {
                raw_logs: vec![(11u64.to_be_bytes().to_vec(), command_entry(12, 1).encode_to_vec())],
                ..Default::default()
            },
            "the record at key 11 holds entry 12",
        ),
        (
            Source {
                raw_logs: vec![(12u64.to_be_bytes().to_vec(), command_entry(12, 1).encode_to_vec())],
                ..Default::default()
            },
            "gap: index 12 follows 10",
        ),
        (
            Source {
                raw_logs: vec![(11u64.to_be_bytes().to_vec(), command_entry(11, 0).encode_to_vec())],
                ..Default::default()
            },
            "terms go backwards",
        ),
        (
            Source { raw_meta: vec![(b"hard_state".to_vec(), vec![1, 2, 3])], ..Default::default() },
            "`hard_state` is not a bincode",
        ),
        (
            Source {
                raw_meta: vec![(
                    b"hard_state".to_vec(),
                    [bincode::serialize(&voted_hard_state()).unwrap(), vec![0]].concat(),
                )],
                ..Default::default()
            },
            "`hard_state` is not a bincode",
        ),
        (
            Source {
                raw_meta: vec![(b"purge_boundary".to_vec(), DLogId { term: 1, index: 3 }.encode_to_vec())],
                ..Default::default()
            },
            "does not sit right below the first entry",
        ),
    ];
    for (source, reason) in cases {
        let d = dirs();
        Source { entries: &log, ..source }.write(&d.src);
        assert_refused(&d.src, &d.dst, reason);
    }
}

#[test]
fn refuses_a_destination_that_is_not_empty() {
    let d = dirs();
    let log = d_engine_log(1..=5, 100);
    Source { entries: &log, ..Default::default() }.write(&d.src);

    std::fs::create_dir(&d.dst).unwrap();
    std::fs::write(d.dst.join("notes.txt"), "keep me").unwrap();
    assert_refused(&d.src, &d.dst, "is not empty");
    assert_eq!(std::fs::read_to_string(d.dst.join("notes.txt")).unwrap(), "keep me");

    let file = d.dst.join("notes.txt");
    assert_refused(&d.src, &file, "is not a directory");

    // An empty directory is fine.
    let empty = d.dst.join("empty");
    std::fs::create_dir(&empty).unwrap();
    assert!(import(&d.src, &empty, &[]).status.success());
}
