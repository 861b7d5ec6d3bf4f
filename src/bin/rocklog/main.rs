//! `rocklog`: benchmark the engine against the baselines a user would otherwise pick, and
//! inspect, dump or check a data directory offline.

mod bench;
mod offline;

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
    Inspect(offline::InspectArgs),
    /// Print the entries of one group.
    Dump(offline::DumpArgs),
    /// Read every record and report holes, decode errors and inconsistencies.
    Check(offline::CheckArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Bench(args) => bench::run(*args),
        Command::Inspect(args) => offline::inspect(args),
        Command::Dump(args) => offline::dump(args),
        Command::Check(args) => offline::check(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("rocklog: {e}");
            ExitCode::from(2)
        }
    }
}
