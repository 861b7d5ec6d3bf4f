//! `rocklog inspect`, `dump` and `check`: read-only views of a data directory.
//!
//! All three open the directory read-only through [`rocklog::offline::OfflineLog`]: they
//! change nothing in it, take no lock, and work beside a running engine (seeing the
//! directory as it was when the command started).
//!
//! Exit status: 0 when all is well; 1 when `check` found something or `dump` met a
//! corrupt record or a hole; 2 when the command could not run (see `main`).

use std::error::Error;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use rocklog::offline::{CheckReport, GroupInfo, OfflineLog};
use rocklog::{HardState, LogId};
use serde_json::{Value, json};

type CliResult = Result<ExitCode, Box<dyn Error>>;

/// Options of `rocklog inspect`.
#[derive(clap::Args, Debug)]
pub struct InspectArgs {
    /// The data directory (opened read-only; a running engine may hold it).
    pub dir: PathBuf,
    /// Print one JSON object: `path`, `format_version`, `unflushed_writes` and `groups`, an
    /// array of objects with `id`, `first_index` and `last_index` (of the entries present),
    /// `last_log_id` (of the last entry, or the purge boundary when the log is empty),
    /// `purged` (log ids are `{term, index}`), `hard_state` (`{term, vote, commit}`),
    /// `entry_count` and `approximate_bytes`. Absent values are null.
    #[arg(long)]
    pub json: bool,
}

/// Options of `rocklog dump`.
#[derive(clap::Args, Debug)]
pub struct DumpArgs {
    /// The data directory (opened read-only; a running engine may hold it).
    pub dir: PathBuf,
    /// The group whose entries to print.
    #[arg(long, short)]
    pub group: u64,
    /// The first index to print (default: the group's first record).
    #[arg(long)]
    pub from: Option<u64>,
    /// The last index to print, inclusive (default: the group's last record).
    #[arg(long)]
    pub to: Option<u64>,
    /// How many payload bytes the preview shows.
    #[arg(long, default_value_t = 32, value_name = "N")]
    pub preview_bytes: usize,
    /// Print JSON Lines: one JSON object per line, `{index, term, size, preview}` for an
    /// entry, `{error, group}` for a corrupt record or a hole.
    #[arg(long)]
    pub json: bool,
}

/// Options of `rocklog check`.
#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    /// The data directory (opened read-only; a running engine may hold it).
    pub dir: PathBuf,
    /// Print one JSON object: `clean`, `entries`, `meta_records`, `groups` and `findings`,
    /// an array of objects with `kind`, the finding's fields and `message`.
    #[arg(long)]
    pub json: bool,
}

/// `rocklog inspect`: format version, then every group's bounds, hard state and size.
pub fn inspect(args: &InspectArgs) -> CliResult {
    let log = OfflineLog::open(&args.dir)?;
    let groups = log.groups().map_err(|e| {
        format!(
            "{e}\nan engine could not open {dir} either; run `rocklog check {dir}` to list every problem",
            dir = args.dir.display()
        )
    })?;
    let unflushed = log.unflushed_writes()?;
    let storage = log.storage_state()?;
    let mut out = BufWriter::new(io::stdout().lock());
    let written = if args.json {
        let groups: Vec<Value> = groups.iter().map(group_json).collect();
        let doc = json!({
            "path": args.dir,
            "format_version": log.format_version(),
            "unflushed_writes": unflushed,
            "storage": {
                "sst_bytes": storage.sst_bytes,
                "wal_bytes": storage.wal_bytes,
                "blob_bytes": storage.blob_bytes,
                "memtable_bytes": storage.memtable_bytes,
                "l0_files": storage.l0_files,
                "disk_free_bytes": storage.disk_free_bytes,
                "disk_capacity_bytes": storage.disk_capacity_bytes,
            },
            "groups": groups,
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&doc)?)
    } else {
        print_inspect(&mut out, &log, &groups, unflushed, &storage)
    };
    finish(written.and_then(|()| out.flush()), ExitCode::SUCCESS)
}

fn print_inspect(
    out: &mut impl Write,
    log: &OfflineLog,
    groups: &[GroupInfo],
    unflushed: u64,
    storage: &rocklog::StorageState,
) -> io::Result<()> {
    let plural = if groups.len() == 1 { "" } else { "s" };
    writeln!(
        out,
        "{}: rocklog format {}, {} group{plural}",
        log.path().display(),
        log.format_version(),
        groups.len()
    )?;
    writeln!(
        out,
        "on disk: {} (SST {}, {} L0 files; WAL {}; blob {}); memtables {}; filesystem {} free of {}",
        human_bytes(storage.disk_bytes()),
        human_bytes(storage.sst_bytes),
        storage.l0_files,
        human_bytes(storage.wal_bytes),
        human_bytes(storage.blob_bytes),
        human_bytes(storage.memtable_bytes),
        human_bytes(storage.disk_free_bytes),
        human_bytes(storage.disk_capacity_bytes),
    )?;
    if groups.is_empty() {
        return Ok(());
    }
    let dash = || "-".to_owned();
    let opt = |v: Option<u64>| v.map_or_else(dash, |v| v.to_string());
    let id = |v: Option<LogId>| v.map_or_else(dash, |v| v.to_string());
    let mut rows = vec![
        ["group", "first", "last", "last log id", "purged", "term", "vote", "commit", "entries", "size"]
            .map(str::to_owned),
    ];
    for g in groups {
        let hs = g.hard_state;
        rows.push([
            g.id.to_string(),
            opt(g.log.first_index),
            opt(g.log.first_index.and(g.log.last_index())),
            id(g.log.last_log_id),
            id(g.log.purged),
            opt(hs.map(|h| h.term)),
            opt(hs.and_then(|h| h.vote)),
            opt(hs.map(|h| h.commit)),
            g.entry_count.to_string(),
            human_bytes(g.approximate_bytes),
        ]);
    }
    let mut widths = [0usize; 10];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for row in &rows {
        let cells: Vec<String> = row.iter().zip(widths).map(|(c, w)| format!("{c:>w$}")).collect();
        writeln!(out, "{}", cells.join("  ").trim_end())?;
    }
    writeln!(
        out,
        "\nlast: the last entry (\"-\" when the log is empty). last log id: index@term of the last entry,"
    )?;
    writeln!(
        out,
        "or of the purge boundary when the log is empty. size: RocksDB's estimate of the group's SST"
    )?;
    writeln!(out, "bytes; the {unflushed} writes still only in the WAL are not counted.")
}

fn log_id_json(id: Option<LogId>) -> Value {
    id.map_or(Value::Null, |id| json!({ "term": id.term, "index": id.index }))
}

fn hard_state_json(hs: Option<HardState>) -> Value {
    hs.map_or(Value::Null, |h| json!({ "term": h.term, "vote": h.vote, "commit": h.commit }))
}

fn group_json(g: &GroupInfo) -> Value {
    json!({
        "id": g.id,
        "first_index": g.log.first_index,
        "last_index": g.log.first_index.and(g.log.last_index()),
        "last_log_id": log_id_json(g.log.last_log_id),
        "purged": log_id_json(g.log.purged),
        "hard_state": hard_state_json(g.hard_state),
        "entry_count": g.entry_count,
        "approximate_bytes": g.approximate_bytes,
    })
}

/// `rocklog dump`: the entries of one group, one per line. A corrupt record or a hole is
/// printed in place (and makes the exit status 1); the dump carries on after it.
pub fn dump(args: &DumpArgs) -> CliResult {
    if let (Some(from), Some(to)) = (args.from, args.to)
        && from > to
    {
        return Err(format!("--from {from} is after --to {to}").into());
    }
    let log = OfflineLog::open(&args.dir)?;
    let from = args.from.unwrap_or(0);
    let entries = match args.to {
        Some(to) => log.entries(args.group, from..=to)?,
        None => log.entries(args.group, from..)?,
    };
    let mut out = BufWriter::new(io::stdout().lock());
    let (mut printed, mut errors) = (0u64, 0u64);
    let body = || -> io::Result<()> {
        if !args.json {
            writeln!(out, "{:>10}  {:>6}  {:>8}  payload", "index", "term", "bytes")?;
        }
        for item in entries {
            if item.is_ok() {
                printed += 1;
            } else {
                errors += 1;
            }
            match item {
                Ok(e) if args.json => {
                    let line = json!({
                        "index": e.index,
                        "term": e.term,
                        "size": e.payload.len(),
                        "preview": preview(&e.payload, args.preview_bytes),
                    });
                    writeln!(out, "{line}")?;
                }
                Ok(e) => {
                    let p = preview(&e.payload, args.preview_bytes);
                    writeln!(out, "{:>10}  {:>6}  {:>8}  {p}", e.index, e.term, e.payload.len())?;
                }
                Err(e) if args.json => {
                    writeln!(out, "{}", json!({ "error": e.to_string(), "group": args.group }))?;
                }
                Err(e) => writeln!(out, "error: {e}")?,
            }
        }
        out.flush()
    };
    let written = body();
    if written.is_ok() && printed == 0 && errors == 0 {
        explain_empty_dump(&log, args)?;
    }
    finish(written, if errors == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// Says why a dump printed nothing: an unknown group is an error, an empty range a note.
fn explain_empty_dump(log: &OfflineLog, args: &DumpArgs) -> Result<(), Box<dyn Error>> {
    let Ok(groups) = log.groups() else { return Ok(()) };
    match groups.iter().find(|g| g.id == args.group) {
        None => {
            let ids: Vec<String> = groups.iter().take(20).map(|g| g.id.to_string()).collect();
            let more = if groups.len() > ids.len() { ", ..." } else { "" };
            Err(format!("group {} does not exist (groups: {}{more})", args.group, ids.join(", ")).into())
        }
        Some(g) => {
            match (g.log.first_index, g.log.last_index()) {
                (Some(first), Some(last)) => {
                    eprintln!("group {} holds entries {first}..={last}; none in the range", g.id);
                }
                _ => eprintln!("group {} holds no entries", g.id),
            }
            Ok(())
        }
    }
}

/// Up to `limit` bytes of a payload: quoted text when they are printable UTF-8, hex
/// otherwise, with `…` when cut.
fn preview(payload: &[u8], limit: usize) -> String {
    let cut = payload.len() > limit;
    let head = payload.get(..limit).unwrap_or(payload);
    // A cut may split a multi-byte character: keep the whole characters before it.
    let text = match std::str::from_utf8(head) {
        Ok(s) => Some(s),
        Err(e) if cut && e.error_len().is_none() => std::str::from_utf8(&head[..e.valid_up_to()]).ok(),
        Err(_) => None,
    };
    let ellipsis = if cut { "…" } else { "" };
    if let Some(s) = text.filter(|s| s.chars().all(|c| !c.is_control())) {
        format!("{s:?}{ellipsis}")
    } else {
        use std::fmt::Write as _;
        let mut hex = String::with_capacity(2 + head.len() * 2);
        hex.push_str("0x");
        for b in head {
            let _ = write!(hex, "{b:02x}");
        }
        format!("{hex}{ellipsis}")
    }
}

/// `rocklog check`: reads every record and prints every finding. Exit status 0 when the
/// directory is clean, 1 when something was found.
pub fn check(args: &CheckArgs) -> CliResult {
    let log = OfflineLog::open(&args.dir)?;
    let report = log.check()?;
    let mut out = BufWriter::new(io::stdout().lock());
    let written =
        if args.json { print_check_json(&mut out, &report) } else { print_check(&mut out, &log, &report) };
    let code = if report.is_clean() { ExitCode::SUCCESS } else { ExitCode::from(1) };
    finish(written.and_then(|()| out.flush()), code)
}

fn print_check(out: &mut impl Write, log: &OfflineLog, report: &CheckReport) -> io::Result<()> {
    for finding in &report.findings {
        writeln!(out, "{finding}")?;
    }
    let read = format!(
        "read {} entries and {} metadata records of {} groups",
        report.entries, report.meta_records, report.groups
    );
    match report.findings.len() {
        0 => writeln!(out, "{}: clean: {read}", log.path().display()),
        n => writeln!(out, "{}: {n} finding{}: {read}", log.path().display(), if n == 1 { "" } else { "s" }),
    }
}

fn print_check_json(out: &mut impl Write, report: &CheckReport) -> io::Result<()> {
    let findings: Vec<Value> = report
        .findings
        .iter()
        .map(|f| {
            let mut v = serde_json::to_value(f).unwrap_or_else(|_| json!({}));
            if let Value::Object(map) = &mut v {
                map.insert("message".into(), f.to_string().into());
            }
            v
        })
        .collect();
    let doc = json!({
        "clean": report.is_clean(),
        "entries": report.entries,
        "meta_records": report.meta_records,
        "groups": report.groups,
        "findings": findings,
    });
    writeln!(out, "{}", serde_json::to_string_pretty(&doc).map_err(io::Error::other)?)
}

/// The exit code, unless writing failed. A closed pipe (`rocklog dump ... | head`) is
/// the reader's choice, not an error.
fn finish(written: io::Result<()>, code: ExitCode) -> CliResult {
    match written {
        Ok(()) => Ok(code),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(code),
        Err(e) => Err(format!("cannot write the output: {e}").into()),
    }
}

/// `1536` → `1.5 KiB`.
#[allow(clippy::cast_precision_loss)] // one decimal is printed
pub(crate) fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{n} B") } else { format!("{value:.1} {}", UNITS[unit]) }
}
