//! `rocklog backup SRC DEST`: a verified copy of a stopped engine's directory.
//!
//! It opens the engine (taking its lock, so a running engine is refused: call
//! [`LogStore::checkpoint`] inside that process instead), makes a checkpoint into DEST,
//! which verifies the copy the way `rocklog check` does, and closes the engine.

use std::error::Error;
use std::path::PathBuf;
use std::process::ExitCode;

use rocklog::offline::OfflineLog;
use rocklog::{Config, CopyMethod, LogStore};
use serde_json::json;

use crate::read_only::human_bytes;

/// Options of `rocklog backup`.
#[derive(clap::Args, Debug)]
pub struct BackupArgs {
    /// The data directory of a stopped engine.
    pub src: PathBuf,
    /// A new directory (or an empty one) for the copy; its parent must exist.
    pub dest: PathBuf,
    /// The engine's settings, as a TOML file (default: the defaults; only RocksDB's
    /// tuning matters while the copy is made).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Print one JSON object: `path`, `method` (`hard_links` or `copied`), `groups`,
    /// `entries`, `bytes` and `seconds`.
    #[arg(long)]
    pub json: bool,
}

/// `rocklog backup`.
pub fn run(args: &BackupArgs) -> Result<ExitCode, Box<dyn Error>> {
    // Refuse a missing, empty or foreign source before opening an engine on it, which
    // would create a new, empty one.
    drop(OfflineLog::open(&args.src)?);
    let mut config = match &args.config {
        Some(path) => Config::from_toml_file(path)?,
        None => Config::default(),
    };
    config.path.clone_from(&args.src);
    let store = LogStore::start(config).map_err(|e| match e {
        rocklog::Error::Locked { .. } => format!(
            "{e}\nan engine is running on {}: call LogStore::checkpoint inside that process to copy it live",
            args.src.display()
        )
        .into(),
        e => Box::<dyn Error>::from(e),
    })?;
    let report = store.checkpoint(&args.dest);
    // Dropping the last handle stops the writer and closes the database.
    drop(store);
    let report = report?;
    let (method, how) = match report.method {
        CopyMethod::HardLinks => ("hard_links", "SST and blob files hard-linked (same filesystem)"),
        _ => (
            "copied",
            "every file copied: the destination is on another filesystem, so hard links are impossible",
        ),
    };
    if args.json {
        let doc = json!({
            "path": report.path,
            "method": method,
            "groups": report.groups,
            "entries": report.entries,
            "bytes": report.bytes,
            "seconds": report.elapsed.as_secs_f64(),
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        println!(
            "{}: {} groups, {} entries, {} in {:.2?}; {how}; verified like `rocklog check`: no finding",
            report.path.display(),
            report.groups,
            report.entries,
            human_bytes(report.bytes),
            report.elapsed,
        );
    }
    Ok(ExitCode::SUCCESS)
}
