//! `rocklog bench` end to end: a tiny workload against every backend produces valid JSON
//! with every documented field, and bad arguments are refused with a message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

fn rocklog() -> Command {
    Command::new(env!("CARGO_BIN_EXE_rocklog"))
}

#[test]
fn bench_json_has_every_field_for_every_backend() {
    let dir = tempfile::tempdir().unwrap();
    let out = rocklog()
        .args(["bench", "--json", "--compare", "--appends", "40", "--proposers", "4", "--groups", "8"])
        .args(["--entry-bytes", "100", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows: Vec<&serde_json::Value> = json.as_array().unwrap().iter().collect();
    let backends: Vec<&str> = rows.iter().map(|r| r["backend"].as_str().unwrap()).collect();
    let mut expected = vec!["rocklog", "rocklog-threads"];
    if cfg!(feature = "raft-engine") {
        expected.extend(["raft-engine", "raft-engine-spawn-blocking"]);
    }
    expected.extend(["rocksdb-sync", "raw-prealloc", "raw-batched"]);
    assert_eq!(backends, expected);
    // The disk's own count is there exactly when the directory's device has counters.
    let dev = std::os::unix::fs::MetadataExt::dev(&std::fs::metadata(dir.path()).unwrap());
    let counted = std::path::Path::new(&format!(
        "/sys/dev/block/{}:{}/stat",
        nix::sys::stat::major(dev),
        nix::sys::stat::minor(dev)
    ))
    .exists();
    for row in &rows {
        match row["disk_amp"].as_f64() {
            Some(v) => {
                assert!(counted && v.is_finite() && v >= 0.0, "disk_amp = {v}, device counted: {counted}");
            }
            None => assert!(!counted && row.get("disk_amp").is_none(), "disk_amp missing in {row}"),
        }
        for field in [
            "entries_per_sec",
            "mib_per_sec",
            "p50_us",
            "p99_us",
            "p999_us",
            "max_us",
            "commits_per_sec",
            "entries_per_commit",
            "cpu_us_per_entry",
            "write_amp",
            "peak_rss_bytes",
        ] {
            let v = row[field].as_f64().unwrap_or_else(|| panic!("{field} missing in {row}"));
            assert!(v.is_finite() && v >= 0.0, "{field} = {v}");
        }
        assert!(row["entries_per_sec"].as_f64().unwrap() > 0.0);
        assert!(row["p99_us"].as_f64().unwrap() >= row["p50_us"].as_f64().unwrap());
        assert_eq!(row["rounds"], 1);
        assert_eq!(row["workload"], "custom");
        assert_eq!(row["params"]["proposers"], 4);
        assert_eq!(row["config"]["durability"], "sync");
    }
    // 40 appends of one entry.
    let rocklog_row = rows[0];
    assert!(rocklog_row["entries_per_commit"].as_f64().unwrap() >= 1.0);
    // With --dir every run's directory is kept, one per backend, and each row names its own.
    let mut kept: Vec<std::path::PathBuf> = rows.iter().map(|r| one_dir(r)).collect();
    for (path, backend) in kept.iter().zip(&backends) {
        assert_eq!(path.parent(), Some(dir.path()), "{}", path.display());
        assert_eq!(path.file_name().unwrap().to_str().unwrap(), format!("custom-{backend}-0"));
        assert!(path.is_dir(), "{}", path.display());
    }
    kept.sort();
    let mut present: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().path()).collect();
    present.sort();
    assert_eq!(present, kept);
}

/// The one kept directory of a one-round JSON row (`dirs`), checked to be absolute.
fn one_dir(row: &serde_json::Value) -> std::path::PathBuf {
    let dirs = row["dirs"].as_array().unwrap_or_else(|| panic!("no dirs in {row}"));
    assert_eq!(dirs.len(), 1, "{row}");
    let path = std::path::PathBuf::from(dirs[0].as_str().unwrap());
    assert!(path.is_absolute(), "{}", path.display());
    path
}

/// Every file below `dir` with its contents.
fn snapshot(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(snapshot(&path));
        } else {
            files.push((path.clone(), std::fs::read(&path).unwrap()));
        }
    }
    files.sort();
    files
}

/// After `bench --dir D` rocklog's run directory is there, and the offline tools read it
/// as they would any engine's directory.
#[test]
fn a_kept_run_directory_is_one_inspect_check_and_dump_read() {
    let dir = tempfile::tempdir().unwrap();
    let out = rocklog()
        .args(["bench", "--backends", "rocklog,raw-batched", "--appends", "20", "--proposers", "2", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stderr: {err}");
    // The table on stdout, and where each run is on stderr.
    let kept: Vec<&str> = err.lines().filter_map(|l| l.strip_prefix("kept: ")).collect();
    assert_eq!(kept.len(), 2, "{err}");
    let data = dir.path().join("custom-rocklog-0");
    assert_eq!(kept[0], data.to_str().unwrap(), "{err}");
    assert!(data.is_dir() && dir.path().join("custom-raw-batched-0").is_dir());

    let offline = |args: &[&str]| {
        let out = rocklog().arg(args[0]).arg(&data).args(&args[1..]).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert_eq!(out.status.code(), Some(0), "{args:?}: {text}{}", String::from_utf8_lossy(&out.stderr));
        text
    };
    offline(&["check"]);
    assert!(offline(&["inspect"]).contains("groups"));
    let doc: serde_json::Value = serde_json::from_str(&offline(&["inspect", "--json"])).unwrap();
    let groups = doc["groups"].as_array().unwrap();
    assert!(!groups.is_empty(), "{doc}");
    let written = groups.iter().find(|g| g["entry_count"].as_u64() > Some(0)).expect("a group with entries");
    let id = written["id"].as_u64().unwrap().to_string();
    assert!(offline(&["dump", "--group", &id]).lines().count() > 1);
}

/// The same bench twice into one --dir: the second run gets a directory of its own, and
/// the first run's data, and anything else already there, stay exactly as they were.
#[test]
fn a_second_bench_into_the_same_dir_keeps_the_first_untouched() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), b"the user's").unwrap();
    let bench = || {
        let out = rocklog()
            .args(["bench", "--json", "--appends", "20", "--proposers", "2", "--dir"])
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        one_dir(&json[0])
    };
    let first = bench();
    assert_eq!(first, dir.path().join("custom-rocklog-0"));
    let before = snapshot(&first);
    assert!(!before.is_empty());
    let second = bench();
    assert_eq!(second, dir.path().join("custom-rocklog-0.2"));
    assert_eq!(snapshot(&first), before, "the second bench changed the first's data");
    assert!(second.is_dir());
    assert_eq!(std::fs::read(dir.path().join("notes.txt")).unwrap(), b"the user's");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 3);
}

/// With no --preset and no flag changing its shape, the run is W2 and is labelled so.
#[test]
fn the_default_run_is_labelled_w2() {
    let dir = tempfile::tempdir().unwrap();
    let out =
        rocklog().args(["bench", "--json", "--appends", "40", "--dir"]).arg(dir.path()).output().unwrap();
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = json.as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["workload"], "W2-concurrent");
    assert_eq!(rows[0]["params"]["proposers"], 64);
    assert_eq!(rows[0]["params"]["groups"], 64);
    assert_eq!(one_dir(&rows[0]), dir.path().join("W2-concurrent-rocklog-0"));
}

#[test]
fn bench_prints_a_table_with_ratios() {
    let out = rocklog()
        .args([
            "bench",
            "--backends",
            "rocklog,rocklog-threads,rocksdb-sync",
            "--appends",
            "20",
            "--proposers",
            "2",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("entries/s"), "{text}");
    // rocklog from tasks against every other row, from threads against the baselines.
    assert!(text.contains("rocklog vs rocksdb-sync"), "{text}");
    assert!(text.contains("rocklog vs rocklog-threads"), "{text}");
    assert!(text.contains("rocklog-threads vs rocksdb-sync"), "{text}");
    assert!(!text.contains("rocklog-threads vs rocklog "), "{text}");
    // Without --dir nothing is kept, so nothing is listed.
    assert!(!String::from_utf8_lossy(&out.stderr).contains("kept:"));
}

/// The backends `--compare` leaves out run too, and `--plot` draws every backend of the
/// run into an SVG file.
#[test]
fn bench_plots_every_backend() {
    let dir = tempfile::tempdir().unwrap();
    let svg = dir.path().join("run.svg");
    let backends = ["rocklog", "raw", "seed-style", "rocksdb-sync-spawn-blocking", "raw-batched"];
    let out = rocklog()
        .args(["bench", "--appends", "16", "--proposers", "2", "--backends", &backends.join(",")])
        .arg("--plot")
        .arg(&svg)
        .output()
        .unwrap();
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(text.starts_with("<svg") && text.trim_end().ends_with("</svg>"), "{text}");
    for b in backends {
        assert!(text.contains(&format!(">{b}</text>")), "{b} missing from the plot");
    }
    assert_eq!(text.matches("<circle").count(), backends.len());
}

#[test]
fn bad_bench_arguments_are_refused() {
    for args in [
        &["bench", "--rounds", "0"][..],
        &["bench", "--max-batch-entries", "0"],
        &["bench", "--proposers", "8", "--groups", "2", "--appends", "1"],
        &["bench", "--linger", "5 parsecs"],
        &["bench", "--durability", "maybe"],
        &["bench", "--appends", "1", "--plot", "/nonexistent-dir/run.svg"],
    ] {
        let out = rocklog().args(args).output().unwrap();
        assert!(!out.status.success(), "{args:?} succeeded");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.trim().is_empty() && !err.contains("panicked"), "{args:?}: {err}");
    }
}

/// Polls `done` every 20 ms; fails with `what` if it does not hold within `secs` seconds.
fn wait_until(secs: u64, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while !done() {
        assert!(std::time::Instant::now() < deadline, "{what} within {secs} s");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Starts `rocklog bench` with `args`, its output discarded.
fn quiet_bench(args: &[&str], tmpdir: &std::path::Path) -> std::process::Child {
    rocklog()
        .arg("bench")
        .args(args)
        .env("TMPDIR", tmpdir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

/// Starts a W2 bench whose temporary directory goes into `tmp`, waits until a run is
/// writing there, sends `sig` and returns the exit status with what `tmp` still holds.
fn interrupted_bench(
    tmp: &std::path::Path,
    sig: nix::sys::signal::Signal,
) -> (std::process::ExitStatus, usize) {
    let mut child = quiet_bench(&["--json", "--backends", "rocklog", "--duration", "60s"], tmp);
    wait_until(30, "no run started", || {
        std::fs::read_dir(tmp)
            .unwrap()
            .flatten()
            .any(|root| std::fs::read_dir(root.path()).is_ok_and(|mut runs| runs.next().is_some()))
    });
    std::thread::sleep(std::time::Duration::from_millis(500));
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
    nix::sys::signal::kill(pid, sig).unwrap();
    let status = child.wait().unwrap();
    (status, std::fs::read_dir(tmp).unwrap().count())
}

/// A bench stopped by SIGTERM or Ctrl-C removes its temporary directory and exits with
/// 128 + the signal. The control: SIGKILL, which no process can act on, leaves it.
#[test]
fn an_interrupted_bench_removes_its_temporary_directory() {
    use nix::sys::signal::Signal;
    for (sig, code) in [(Signal::SIGTERM, 143), (Signal::SIGINT, 130)] {
        let tmp = tempfile::tempdir().unwrap();
        let (status, left) = interrupted_bench(tmp.path(), sig);
        assert_eq!((status.code(), left), (Some(code), 0), "{sig}");
    }
    let tmp = tempfile::tempdir().unwrap();
    let (_, left) = interrupted_bench(tmp.path(), Signal::SIGKILL);
    assert_eq!(left, 1, "the control: a killed bench leaves its directory");
}

/// Processes whose command line (arguments joined by spaces) mentions `needle`.
fn processes_mentioning(needle: &str) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
            let args = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            args.contains(needle).then_some(pid)
        })
        .collect()
}

/// W6's writer child stops appending once the bench that started it is gone, even one
/// killed outright with its runs kept (`--dir`), where nothing removes the directory the
/// child appends to: an orphan would fill the disk.
#[test]
fn w6_writer_child_stops_when_its_bench_is_gone() {
    let tmp = tempfile::tempdir().unwrap();
    let kept = tmp.path().join("kept");
    let needle = format!("__bench-writer --backend rocklog --dir {}", kept.display());
    let kept_arg = kept.to_str().unwrap();
    let mut bench = quiet_bench(
        &[
            "--json",
            "--preset",
            "w6",
            "--backends",
            "rocklog",
            "--fill-bytes",
            "8MiB",
            "--rounds",
            "50",
            "--dir",
            kept_arg,
        ],
        tmp.path(),
    );
    wait_until(60, "no writer child", || !processes_mentioning(&needle).is_empty());
    // After the child's first append and its "ready" (the bench kills it a second
    // after that), before the bench's own kill.
    std::thread::sleep(std::time::Duration::from_millis(400));
    bench.kill().unwrap();
    bench.wait().unwrap();
    wait_until(10, "the writer child did not stop after its bench", || {
        processes_mentioning(&needle).is_empty()
    });
}

/// The long flags a subcommand's `--help` lists, `--help` itself left out.
fn flags_of(subcommand: &str) -> std::collections::BTreeSet<String> {
    let out = rocklog().args([subcommand, "--help"]).output().unwrap();
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout)
        .split(|c: char| c.is_whitespace() || c == ',' || c == '[' || c == '(')
        .filter(|word| word.starts_with("--") && word.len() > 2)
        .map(|word| word.trim_end_matches(|c: char| !c.is_ascii_alphanumeric()).to_owned())
        .filter(|flag| flag != "--help")
        .collect()
}

/// Every flag `rocklog bench --help` lists is named in `docs/benchmarks.md`, so a new flag
/// cannot ship undocumented.
#[test]
fn every_bench_flag_is_documented() {
    let docs = include_str!("../../docs/benchmarks.md");
    let flags = flags_of("bench");
    assert!(flags.len() > 20, "{flags:?}");
    for flag in flags {
        assert!(docs.contains(&format!("`{flag}")), "docs/benchmarks.md does not name `{flag}`");
    }
}

/// Every flag of the offline tools and `backup` is in `docs/operations.md`'s synopsis of
/// the `rocklog` tool.
#[test]
fn every_tool_flag_is_documented() {
    let docs = include_str!("../../docs/operations.md");
    for subcommand in ["inspect", "dump", "check", "backup"] {
        let synopsis = format!("rocklog {subcommand} ");
        let line = docs.lines().find(|line| line.starts_with(&synopsis));
        let line = line.unwrap_or_else(|| panic!("docs/operations.md has no synopsis line for {subcommand}"));
        for flag in flags_of(subcommand) {
            assert!(
                line.contains(&format!("[{flag}")) || line.contains(&format!(" {flag} ")),
                "{subcommand}'s synopsis lacks {flag}: {line}"
            );
        }
    }
}
