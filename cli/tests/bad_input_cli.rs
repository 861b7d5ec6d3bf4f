//! Bad input through the `rocklog` tool: every refusal exits 2 with a message that says
//! what was wrong, never panics, and leaves the directories it was pointed at exactly as
//! they were. (`tests/cli_bench.rs` covers `--rounds 0`, `--max-batch-entries 0`, too few
//! groups, a bad `--linger` and `--durability`; `tests/cli_offline.rs` a foreign or
//! missing directory and an unknown group for `dump`.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output};

use rocklog::{Config, Entry, LogStore};

fn rocklog(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rocklog")).args(args).output().expect("run rocklog")
}

/// Every file under `dir` with its contents (a missing `dir` is `None`).
fn contents(dir: &Path) -> Option<Vec<(String, Vec<u8>)>> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .ok()?
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
    Some(files)
}

/// Runs `args`, expects exit status 2 and `message` in stderr, and no panic.
fn refused(args: &[&str], message: &str) {
    let out = rocklog(args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?} was not refused: {err}");
    assert!(err.contains(message), "{args:?}: expected {message:?} in: {err}");
    assert!(!err.contains("panicked"), "{args:?}: {err}");
}

/// A small engine directory: group 1 holds 1..=10.
fn engine_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    rt.block_on(async {
        let store = LogStore::start(Config::new(dir.path())).unwrap();
        let entries: Vec<Entry> = (1..=10).map(|i| Entry::new(i, 1, format!("entry {i}"))).collect();
        store.group(1).append(&entries).await.unwrap();
        store.shutdown().await.unwrap();
    });
    dir
}

#[test]
fn bad_bench_arguments_are_refused_before_anything_is_written() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("bench-dir");
    std::fs::create_dir(&data).unwrap();
    let dir = data.to_str().unwrap();
    let file = work.path().join("a-file");
    std::fs::write(&file, "keep me").unwrap();
    let config = |name: &str, text: &str| {
        let path = work.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let syntax = config("syntax.toml", "max_batch_entries = = 3\n");
    let unknown = config("unknown.toml", "max_batch_entrys = 5\n");
    let zero = config("zero.toml", "channel_capacity = 0\n");
    let wrong_type = config("type.toml", "max_batch_bytes = true\n");
    let missing = work.path().join("missing.toml");
    let missing = missing.to_str().unwrap();

    let cases: &[(&[&str], &str)] = &[
        (&["--preset", "w9"], "invalid value 'w9' for '--preset <PRESET>'"),
        (&["--backends", "nosuch"], "invalid value 'nosuch' for '--backends <BACKENDS>'"),
        (&["--entry-bytes", "0"], "invalid value '0' for '--entry-bytes <ENTRY_BYTES>'"),
        (&["--proposers", "0"], "invalid value '0' for '--proposers <PROPOSERS>'"),
        (&["--proposers", "1", "--groups", "0"], "invalid value '0' for '--groups <GROUPS>'"),
        (&["--entries-per-append", "0"], "invalid value '0' for '--entries-per-append <ENTRIES_PER_APPEND>'"),
        (&["--appends", "0"], "invalid value '0' for '--appends <APPENDS>'"),
        (&["--duration", "0s"], "invalid value '0s' for '--duration <DURATION>': must be above zero"),
        (&["--preset", "w5", "--purge-every", "0s"], "invalid value '0s' for '--purge-every <PURGE_EVERY>'"),
        (&["--entry-bytes", "-5"], "unexpected argument '-5'"),
        (&["--max-batch-bytes", "1B"], "max_batch_bytes = 1B is outside 1KiB..=1GiB"),
        (&["--metrics-addr", "nowhere"], "invalid value 'nowhere' for '--metrics-addr"),
        (&["--config", missing], "missing.toml"),
        (&["--config", &syntax], "syntax.toml"),
        (&["--config", &unknown], "max_batch_entrys"),
        (&["--config", &zero], "channel_capacity = 0 is outside"),
        (&["--config", &wrong_type], "max_batch_bytes"),
    ];
    for (args, message) in cases {
        // `--appends 1` makes a refusal that fails to happen end quickly.
        let mut args: Vec<&str> = ["bench", "--dir", dir].iter().chain(*args).copied().collect();
        if !args.iter().any(|a| ["--appends", "--duration"].contains(a)) {
            args.extend(["--appends", "1"]);
        }
        refused(&args, message);
        assert_eq!(contents(&data), Some(vec![]), "{args:?} wrote into --dir");
    }

    // A --dir that is a file: the run cannot start, and the file is untouched.
    refused(&["bench", "--appends", "1", "--dir", file.to_str().unwrap()], "a-file is not a directory");
    assert_eq!(std::fs::read(&file).unwrap(), b"keep me");
}

#[test]
fn bad_offline_arguments_are_refused_and_the_directory_is_untouched() {
    let engine = engine_dir();
    let before = contents(engine.path());
    let dir = engine.path().to_str().unwrap();
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("a-file");
    std::fs::write(&file, "keep me").unwrap();
    let empty = work.path().join("empty");
    std::fs::create_dir(&empty).unwrap();

    refused(&["frobnicate", dir], "unrecognized subcommand 'frobnicate'");
    refused(&["check"], "the following required arguments were not provided");
    refused(&["check", dir, "--nonsense"], "unexpected argument '--nonsense'");
    refused(&["check", file.to_str().unwrap()], "is not a rocklog directory: it is not a directory");
    refused(&["inspect", empty.to_str().unwrap()], "is not a rocklog directory: it is empty");
    refused(&["dump", dir], "--group <GROUP>");
    refused(&["dump", dir, "--group", "one"], "invalid value 'one' for '--group <GROUP>'");
    refused(&["dump", dir, "--group", "1", "--from", "8", "--to", "3"], "--from 8 is after --to 3");

    assert_eq!(contents(engine.path()), before, "a refused command changed the engine directory");
    assert_eq!(std::fs::read(&file).unwrap(), b"keep me");
    assert_eq!(contents(&empty), Some(vec![]));
}
