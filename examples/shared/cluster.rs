//! The run both cluster examples make, whatever openraft's version, and its report:
//! elect a leader, write N requests from many clients, stop a follower, write N more,
//! restart the follower from its directory, wait until it caught up, compare the state
//! machines, and print rocklog's group-commit counters per node. Each example implements
//! [`Cluster`] for its openraft version. Included with `#[path]`, next to `kv.rs`.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};

use rocklog::{LogStore, Stats};

use super::kv::{BoxError, Request};

/// A 3-node cluster in one process, seen through what [`run`] needs.
pub trait Cluster {
    /// What a client task holds to write through the current leader.
    type Client: Clone + Send + Sync + 'static;

    /// Starts node `id` from its directory (creating it on the first start).
    async fn start(&mut self, id: u64) -> Result<(), BoxError>;
    /// Takes node `id` off the network, stops it and closes its rocklog engine.
    async fn stop(&mut self, id: u64) -> Result<(), BoxError>;
    /// Makes nodes 1 to 3 a cluster.
    async fn initialize(&self) -> Result<(), BoxError>;
    /// The current leader, once there is one.
    async fn leader(&self) -> Result<u64, BoxError>;
    /// A client of the running nodes.
    fn client(&self) -> Self::Client;
    /// Writes one request through the current leader, following a leader change.
    fn write(client: &Self::Client, req: Request) -> impl Future<Output = Result<(), String>> + Send;
    /// The running nodes.
    fn ids(&self) -> Vec<u64>;
    /// Node `id`'s rocklog engine.
    fn store(&self, id: u64) -> Result<&LogStore, BoxError>;
    /// Node `id`'s last applied log index, and that log id as openraft prints it.
    fn applied(&self, id: u64) -> Result<(Option<u64>, String), BoxError>;
    /// Waits until node `id` applied `index`.
    async fn wait_applied(&self, id: u64, index: Option<u64>) -> Result<(), BoxError>;
    /// Node `id`'s map, and how many snapshots it installed from a leader.
    fn kv(&self, id: u64) -> Result<(BTreeMap<String, String>, u64), BoxError>;
}

/// Writes `n` requests numbered from `first` through the leader, `clients` at a time.
/// Returns the elapsed time and the sorted request latencies.
async fn write<C: Cluster>(
    cluster: &C,
    first: u64,
    n: u64,
    clients: u64,
) -> Result<(Duration, Vec<Duration>), BoxError> {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let client = cluster.client();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut i = first + c;
            while i < first + n {
                let t = Instant::now();
                C::write(&client, Request::numbered(i)).await?;
                latencies.push(t.elapsed());
                i += clients;
            }
            Ok::<_, String>(latencies)
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await??);
    }
    latencies.sort_unstable();
    Ok((started.elapsed(), latencies))
}

/// The `percent`-th percentile of sorted latencies, by rank.
fn percentile(sorted: &[Duration], percent: usize) -> Duration {
    let last = sorted.len().saturating_sub(1);
    sorted.get(last * percent.min(100) / 100).copied().unwrap_or_default()
}

/// A count as `f64`, for printed rates.
#[allow(clippy::cast_precision_loss)] // counts here are far below 2^53
fn float(n: u64) -> f64 {
    n as f64
}

fn report_phase(name: &str, n: u64, elapsed: Duration, latencies: &[Duration]) {
    println!(
        "{name}: {n} requests in {:.2} s = {:.0} requests/s (latency p50 {:.2} ms, p99 {:.2} ms)",
        elapsed.as_secs_f64(),
        float(n) / elapsed.as_secs_f64(),
        percentile(latencies, 50).as_secs_f64() * 1e3,
        percentile(latencies, 99).as_secs_f64() * 1e3,
    );
}

/// (commits, fsyncs, commands, entries) between two readings of an engine's counters.
fn delta(after: Stats, before: Stats) -> (u64, u64, u64, u64) {
    (
        after.commits - before.commits,
        after.syncs - before.syncs,
        after.commands - before.commands,
        after.appended_entries - before.appended_entries,
    )
}

fn report_stats<C: Cluster>(cluster: &C, before: &BTreeMap<u64, Stats>, leader: u64) -> Result<(), BoxError> {
    println!("rocklog per node over both write phases:");
    println!("  node  role       commits    fsyncs  commands   entries  entries/fsync  commands/fsync");
    for id in cluster.ids() {
        let (commits, syncs, commands, entries) =
            delta(cluster.store(id)?.stats(), before.get(&id).copied().unwrap_or_default());
        let role = if id == leader { "leader" } else { "follower" };
        let per = |x: u64| if syncs == 0 { 0.0 } else { float(x) / float(syncs) };
        println!(
            "  {id:>4}  {role:<9} {commits:>8} {syncs:>9} {commands:>9} {entries:>9} {:>14.1} {:>15.1}",
            per(entries),
            per(commands)
        );
    }
    Ok(())
}

/// The example: `n` requests per phase from `clients` clients.
pub async fn run<C: Cluster>(cluster: &mut C, n: u64, clients: u64) -> Result<(), BoxError> {
    for id in 1..=3 {
        cluster.start(id).await?;
    }
    cluster.initialize().await?;
    let leader = cluster.leader().await?;
    println!("leader elected: node {leader}");
    let mut before = BTreeMap::new();
    for id in cluster.ids() {
        before.insert(id, cluster.store(id)?.stats());
    }

    let (elapsed, latencies) = write(cluster, 0, n, clients).await?;
    report_phase(&format!("phase 1, 3 nodes, {clients} clients"), n, elapsed, &latencies);

    let leader = cluster.leader().await?;
    let follower = (1..=3).find(|id| *id != leader).ok_or("no follower")?;
    let follower_stats = cluster.store(follower)?.stats();
    cluster.stop(follower).await?;
    println!("node {follower} shut down (its rocklog engine closed)");

    let (elapsed, latencies) = write(cluster, n, n, clients).await?;
    report_phase(&format!("phase 2, 2 nodes, {clients} clients"), n, elapsed, &latencies);
    let leader = cluster.leader().await?;
    let (target, _) = cluster.applied(leader)?;

    let restarted = Instant::now();
    cluster.start(follower).await?;
    let (_, opened) = cluster.applied(follower)?;
    cluster.wait_applied(follower, target).await?;
    println!(
        "node {follower} restarted from its directory (applied {opened} on open) and caught up to index {} in {:.0} ms",
        target.map_or("-".into(), |i| i.to_string()),
        restarted.elapsed().as_secs_f64() * 1e3,
    );
    let state = cluster.store(follower)?.group(1).log_state()?;
    let (follower_kv, installed) = cluster.kv(follower)?;
    println!(
        "  its rocklog log: entries {}..={}, purged up to {}, snapshots installed since restart: {installed}",
        state.first_index.map_or("-".into(), |i| i.to_string()),
        state.last_index().map_or("-".into(), |i| i.to_string()),
        state.purged.map_or("-".into(), |p| p.to_string()),
    );
    if cluster.kv(leader)?.0 != follower_kv {
        return Err("the restarted node's state machine differs from the leader's".into());
    }
    println!("  state machines agree: {} keys", follower_kv.len());

    let stopped = delta(follower_stats, before.get(&follower).copied().unwrap_or_default());
    before.insert(follower, Stats::default());
    report_stats(cluster, &before, leader)?;
    println!(
        "  node {follower}'s row counts from its restart; before it stopped: {} fsyncs, {} entries",
        stopped.1, stopped.3
    );

    for id in 1..=3 {
        cluster.stop(id).await?;
    }
    Ok(())
}

/// The example's arguments: `[N] [CLIENTS]`, defaults 1000 and 64.
pub fn args() -> Result<(u64, u64), BoxError> {
    let mut args = std::env::args().skip(1);
    let n: u64 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(1000);
    let clients: u64 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(64).clamp(1, n.max(1));
    Ok((n, clients))
}
