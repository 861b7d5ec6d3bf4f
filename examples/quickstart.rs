//! Opens an engine on a temporary directory, appends from many concurrent tasks into many
//! groups, and prints what group commit made of it.
//!
//! `cargo run --release --example quickstart`

use std::time::Instant;

use rocklog::{Config, Entry, LogStore};

const GROUPS: u64 = 64;
const APPENDS: u64 = 200;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let store = LogStore::start(Config::new(dir.path()))?;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for g in 0..GROUPS {
        let group = store.group(g);
        tasks.push(tokio::spawn(async move {
            for i in 1..=APPENDS {
                group.append(&[Entry::new(i, 1, vec![7u8; 256])]).await?;
            }
            Ok::<_, rocklog::Error>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let elapsed = started.elapsed();
    let stats = store.stats();
    println!("directory        {}", dir.path().display());
    println!("groups           {GROUPS}, one task each, {APPENDS} synced appends of 256 B");
    println!("entries          {}", stats.appended_entries);
    println!("elapsed          {elapsed:.2?}");
    #[allow(clippy::cast_precision_loss)] // printed rates of counts far below 2^53
    let float = |n: u64| n as f64;
    println!("entries/s        {:.0}", float(stats.appended_entries) / elapsed.as_secs_f64());
    println!("commits (fsyncs) {}", stats.commits);
    println!("entries/commit   {:.1}", float(stats.appended_entries) / float(stats.commits.max(1)));
    store.shutdown().await?;
    Ok(())
}
