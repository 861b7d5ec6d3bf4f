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
    let mut expected = vec!["rocklog"];
    if cfg!(feature = "raft-engine") {
        expected.extend(["raft-engine", "raft-engine-spawn-blocking"]);
    }
    expected.extend(["rocksdb-sync", "raw-prealloc", "raw-batched"]);
    assert_eq!(backends, expected);
    for row in &rows {
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
    // 40 appends of one entry, and the run directories were cleaned up.
    let rocklog_row = rows[0];
    assert!(rocklog_row["entries_per_commit"].as_f64().unwrap() >= 1.0);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
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
}

#[test]
fn bench_prints_a_table_with_ratios() {
    let out = rocklog()
        .args(["bench", "--backends", "rocklog,rocksdb-sync", "--appends", "20", "--proposers", "2"])
        .output()
        .unwrap();
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("entries/s"), "{text}");
    assert!(text.contains("rocklog vs rocksdb-sync"), "{text}");
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
