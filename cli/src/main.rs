//! `rocklog`: benchmark the engine against the baselines a user would otherwise pick, and
//! inspect, dump, check or back up a data directory offline.

#![forbid(unsafe_code)]

mod backup;
mod bench;
#[cfg(feature = "d-engine")]
mod import;
mod read_only;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// rocklog: a durable, group-committing Raft log store on RocksDB.
#[derive(Parser, Debug)]
#[command(name = "rocklog", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a synced workload (default: on a temporary directory) and print a result table;
    /// with --compare, run the baselines in the same process too.
    Bench(Box<bench::BenchArgs>),
    /// Show a data directory: format version, groups, bounds, hard state, sizes.
    Inspect(read_only::InspectArgs),
    /// Print the entries of one group.
    Dump(read_only::DumpArgs),
    /// Read every record and report holes, decode errors and inconsistencies.
    Check(read_only::CheckArgs),
    /// Copy a stopped engine's directory into a new one (hard links on the same
    /// filesystem, copies elsewhere), verified like `check`. For a running engine, call
    /// `LogStore::checkpoint` in its process.
    Backup(backup::BackupArgs),
    /// Copy a d-engine 0.2.3 RocksDB log (column families `logs` and `meta`) and its hard
    /// state into a new rocklog directory, then verify the copy.
    #[cfg(feature = "d-engine")]
    #[command(name = "import-d-engine")]
    ImportDEngine(import::ImportArgs),
    /// W6's victim: appends to a filled store until killed (run by `bench`, not by hand).
    #[command(name = "__bench-writer", hide = true)]
    BenchWriter(bench::WriterArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Bench(args) => bench::run(&args),
        Command::Inspect(args) => read_only::inspect(&args),
        Command::Dump(args) => read_only::dump(&args),
        Command::Check(args) => read_only::check(&args),
        Command::Backup(args) => backup::run(&args),
        #[cfg(feature = "d-engine")]
        Command::ImportDEngine(args) => import::run(&args),
        Command::BenchWriter(args) => bench::writer_child(&args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("rocklog: {e}");
            ExitCode::from(2)
        }
    }
}
