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

/// A Raft setting for experiments: the environment variable `name` when it is set,
/// `default` otherwise (for example `API_BATCH_CAPACITY=1` to see 0.10 without client
/// write batching).
pub fn setting(name: &str, default: u64) -> Result<u64, BoxError> {
    match std::env::var(name) {
        Ok(value) => Ok(value.parse().map_err(|e| format!("{name}={value}: {e}"))?),
        Err(_) => Ok(default),
    }
}

/// The example's arguments: `[N] [CLIENTS]`, defaults 1000 and 64.
pub fn args() -> Result<(u64, u64), BoxError> {
    let mut args = std::env::args().skip(1);
    let n: u64 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(1000);
    let clients: u64 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(64).clamp(1, n.max(1));
    Ok((n, clients))
}

/// The parts of a cluster example that are the same code for both openraft versions,
/// differing only in the types the names below stand for: the in-memory router, the
/// running nodes, their [`Cluster`] implementation and `main`. Expanded in the example,
/// whose scope provides the version's names: `Nid`, `TypeConfig`, `Node` (its `Raft`),
/// `RaftConfig` (its `Config`), `Down` (its `Unreachable` error), `Raft`, `BasicNode`,
/// `SnapshotPolicy`, `RaftNetworkFactory`, `LogStorage` (the rocklog adapter),
/// `KvStateMachine` (with `open(SnapshotFile)` and `lock()` giving `data` and
/// `installed`), and three accessors, `leader_of(&Node)`, `applied_of(&Node)` and
/// `forwards(&client_write_error)`. `config` lists the example's own Raft settings.
macro_rules! cluster_example {
    (title: $title:expr, config: { $($field:ident : $value:expr),* $(,)? }) => {
        /// The in-memory network: every running node's Raft by id.
        #[derive(Clone, Default)]
        struct Router {
            nodes: ::std::sync::Arc<::std::sync::Mutex<::std::collections::BTreeMap<Nid, Node>>>,
        }

        impl Router {
            fn nodes(&self) -> ::std::sync::MutexGuard<'_, ::std::collections::BTreeMap<Nid, Node>> {
                self.nodes.lock().unwrap_or_else(::std::sync::PoisonError::into_inner)
            }
        }

        /// One node's connection to `target`, calling its Raft directly.
        struct Connection {
            router: Router,
            target: Nid,
        }

        impl Connection {
            /// The target's Raft, or `Unreachable` while it is down.
            fn target(&self) -> Result<Node, Down> {
                self.router.nodes().get(&self.target).cloned().ok_or_else(|| {
                    let down = ::std::io::Error::new(
                        ::std::io::ErrorKind::NotConnected,
                        format!("node {} is down", self.target),
                    );
                    Down::new(&down)
                })
            }
        }

        impl RaftNetworkFactory<TypeConfig> for Router {
            type Network = Connection;

            async fn new_client(&mut self, target: Nid, _node: &BasicNode) -> Connection {
                Connection { router: self.clone(), target }
            }
        }

        struct Running {
            raft: Node,
            store: ::rocklog::LogStore,
            sm: KvStateMachine,
        }

        /// The cluster: each node in `root/node-<id>`, its log in a rocklog engine there.
        struct LocalCluster {
            root: ::std::path::PathBuf,
            router: Router,
            config: ::std::sync::Arc<RaftConfig>,
            nodes: ::std::collections::BTreeMap<Nid, Running>,
        }

        impl LocalCluster {
            fn node(&self, id: Nid) -> Result<&Running, BoxError> {
                self.nodes.get(&id).ok_or_else(|| format!("node {id} is not running").into())
            }
        }

        impl cluster::Cluster for LocalCluster {
            type Client = Router;

            async fn start(&mut self, id: Nid) -> Result<(), BoxError> {
                let dir = self.root.join(format!("node-{id}"));
                ::std::fs::create_dir_all(&dir)?;
                let store = ::rocklog::LogStore::start(::rocklog::Config::new(dir.join("log")))?;
                let log = LogStorage::<TypeConfig>::open(store.group(1)).await?;
                let sm = KvStateMachine::open(SnapshotFile(Some(dir.join("snapshot.bin"))))?;
                let config = ::std::sync::Arc::clone(&self.config);
                let raft = Raft::new(id, config, self.router.clone(), log, sm.clone()).await?;
                self.router.nodes().insert(id, raft.clone());
                self.nodes.insert(id, Running { raft, store, sm });
                Ok(())
            }

            async fn stop(&mut self, id: Nid) -> Result<(), BoxError> {
                self.router.nodes().remove(&id);
                if let Some(node) = self.nodes.remove(&id) {
                    node.raft.shutdown().await?;
                    node.store.shutdown().await?;
                }
                Ok(())
            }

            async fn initialize(&self) -> Result<(), BoxError> {
                let members: ::std::collections::BTreeMap<Nid, BasicNode> =
                    (1..=3).map(|id| (id, BasicNode::new(format!("node-{id}")))).collect();
                self.node(1)?.raft.initialize(members).await?;
                Ok(())
            }

            async fn leader(&self) -> Result<Nid, BoxError> {
                let any = self.nodes.values().next().ok_or("no node is running")?;
                let timeout = Some(::std::time::Duration::from_secs(10));
                let m = any.raft.wait(timeout).metrics(|m| m.current_leader.is_some(), "a leader").await?;
                m.current_leader.ok_or_else(|| "no leader".into())
            }

            fn client(&self) -> Router {
                self.router.clone()
            }

            async fn write(router: &Router, req: Request) -> Result<(), String> {
                for _ in 0..200 {
                    let leader = {
                        let nodes = router.nodes();
                        nodes.values().find_map(leader_of).and_then(|id| nodes.get(&id).cloned())
                    };
                    if let Some(raft) = leader {
                        match raft.client_write(req.clone()).await {
                            Ok(_) => return Ok(()),
                            Err(e) if forwards(&e) => {}
                            Err(e) => return Err(e.to_string()),
                        }
                    }
                    tokio::time::sleep(::std::time::Duration::from_millis(20)).await;
                }
                Err("no leader accepted the request for 4 s".into())
            }

            fn ids(&self) -> Vec<Nid> {
                self.nodes.keys().copied().collect()
            }

            fn store(&self, id: Nid) -> Result<&::rocklog::LogStore, BoxError> {
                Ok(&self.node(id)?.store)
            }

            fn applied(&self, id: Nid) -> Result<(Option<u64>, String), BoxError> {
                let applied = applied_of(&self.node(id)?.raft);
                Ok((applied.map(|l| l.index), applied.map_or("nothing".into(), |l| l.to_string())))
            }

            async fn wait_applied(&self, id: Nid, index: Option<u64>) -> Result<(), BoxError> {
                let timeout = Some(::std::time::Duration::from_secs(30));
                self.node(id)?.raft.wait(timeout).applied_index_at_least(index, "catch up").await?;
                Ok(())
            }

            fn kv(&self, id: Nid) -> Result<(::std::collections::BTreeMap<String, String>, u64), BoxError> {
                let inner = self.node(id)?.sm.lock();
                Ok((inner.data.kv.clone(), inner.installed))
            }
        }

        #[tokio::main]
        async fn main() -> Result<(), BoxError> {
            let (n, clients) = cluster::args()?;
            let root = tempfile::tempdir()?;
            let config = RaftConfig {
                cluster_name: "rocklog-example".into(),
                heartbeat_interval: 50,
                election_timeout_min: 150,
                election_timeout_max: 300,
                // Snapshot and purge during the run, so the restarted follower meets a
                // purged log.
                snapshot_policy: SnapshotPolicy::LogsSinceLast((n / 2).max(100)),
                max_in_snapshot_log_to_keep: (n / 10).max(10),
                // Entries per replication request (openraft's default: 300).
                max_payload_entries: cluster::setting("MAX_PAYLOAD_ENTRIES", 300)?,
                $($field: $value,)*
                ..Default::default()
            };
            let mut cluster = LocalCluster {
                root: root.path().to_owned(),
                router: Router::default(),
                config: ::std::sync::Arc::new(config.validate()?),
                nodes: ::std::collections::BTreeMap::new(),
            };
            println!("{}: 3 nodes, logs in {}/node-*/log", $title, root.path().display());
            cluster::run(&mut cluster, n, clients).await
        }
    };
}

pub(crate) use cluster_example;
