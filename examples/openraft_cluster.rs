//! A 3-node openraft cluster in one process, each node's log in its own rocklog
//! directory, talking through an in-memory router.
//!
//! It elects a leader, writes N client requests, shuts a follower down, writes N more,
//! restarts the follower from its directory and waits until it has caught up with the
//! leader, then prints throughput and rocklog's group-commit counters.
//!
//! ```sh
//! cargo run --example openraft_cluster --all-features -- [N] [CLIENTS]   # defaults: 1000 64
//! ```
//!
//! The state machine is an in-memory map whose snapshots are written to a file beside the
//! log, so a restarted node rebuilds it from its snapshot plus the committed entries
//! rocklog kept.

use std::collections::BTreeMap;
use std::io::{Cursor, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use openraft::error::{InstallSnapshotError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::{Backoff, RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::storage::RaftStateMachine;
use openraft::{
    AnyError, BasicNode, Entry, EntryPayload, LogId, Raft, RaftSnapshotBuilder, Snapshot, SnapshotMeta,
    SnapshotPolicy, StorageError, StorageIOError, StoredMembership,
};
use rocklog::openraft::LogStorage;
use rocklog::{LogStore, Stats};
use serde::{Deserialize, Serialize};

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Nid = u64;

openraft::declare_raft_types!(
    /// The types of the example's Raft.
    pub TypeConfig:
        D = Request,
        R = Response,
);

/// A client request: set `key` to `value`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Request {
    key: String,
    value: String,
}

/// The value the key held before.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Response(Option<String>);

// ----- the state machine: a map, snapshotted to a file -----

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct KvData {
    applied: Option<LogId<Nid>>,
    membership: StoredMembership<Nid, BasicNode>,
    kv: BTreeMap<String, String>,
}

#[derive(Default)]
struct KvInner {
    data: KvData,
    snapshot: Option<(SnapshotMeta<Nid, BasicNode>, Vec<u8>)>,
    installed: u64,
}

#[derive(Clone)]
struct KvStateMachine {
    inner: Arc<Mutex<KvInner>>,
    snapshot_path: PathBuf,
}

fn sm_error(e: impl ToString) -> StorageError<Nid> {
    StorageIOError::write_state_machine(AnyError::error(e)).into()
}

impl KvStateMachine {
    /// The state machine of a node whose last snapshot is at `snapshot_path` (if any).
    fn open(snapshot_path: PathBuf) -> Result<Self, BoxError> {
        let mut inner = KvInner::default();
        if snapshot_path.exists() {
            let bytes = std::fs::read(&snapshot_path)?;
            let (meta, data): (SnapshotMeta<Nid, BasicNode>, Vec<u8>) = rmp_serde::from_slice(&bytes)?;
            inner.data = rmp_serde::from_slice(&data)?;
            inner.snapshot = Some((meta, data));
        }
        Ok(KvStateMachine { inner: Arc::new(Mutex::new(inner)), snapshot_path })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, KvInner> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn data(&self) -> KvData {
        self.lock().data.clone()
    }

    /// Writes the snapshot durably: temporary file, fsync, rename.
    fn persist(&self, meta: &SnapshotMeta<Nid, BasicNode>, data: &[u8]) -> Result<(), BoxError> {
        let bytes = rmp_serde::to_vec_named(&(meta, data))?;
        let tmp = self.snapshot_path.with_extension("tmp");
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(&bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, &self.snapshot_path)?;
        Ok(())
    }
}

impl RaftSnapshotBuilder<TypeConfig> for KvStateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<Nid>> {
        let (meta, data) = {
            let inner = self.lock();
            let data = rmp_serde::to_vec_named(&inner.data).map_err(sm_error)?;
            let last = inner.data.applied;
            let meta = SnapshotMeta {
                last_log_id: last,
                last_membership: inner.data.membership.clone(),
                snapshot_id: format!("{}", last.map_or(0, |l| l.index)),
            };
            (meta, data)
        };
        self.persist(&meta, &data).map_err(sm_error)?;
        self.lock().snapshot = Some((meta.clone(), data.clone()));
        Ok(Snapshot { meta, snapshot: Box::new(Cursor::new(data)) })
    }
}

impl RaftStateMachine<TypeConfig> for KvStateMachine {
    type SnapshotBuilder = Self;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<Nid>>, StoredMembership<Nid, BasicNode>), StorageError<Nid>> {
        let inner = self.lock();
        Ok((inner.data.applied, inner.data.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Response>, StorageError<Nid>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + Send,
        I::IntoIter: Send,
    {
        let mut inner = self.lock();
        let mut replies = Vec::new();
        for entry in entries {
            inner.data.applied = Some(entry.log_id);
            replies.push(match entry.payload {
                EntryPayload::Blank => Response(None),
                EntryPayload::Normal(req) => Response(inner.data.kv.insert(req.key, req.value)),
                EntryPayload::Membership(m) => {
                    inner.data.membership = StoredMembership::new(Some(entry.log_id), m);
                    Response(None)
                }
            });
        }
        Ok(replies)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError<Nid>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<Nid, BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<Nid>> {
        let data = snapshot.into_inner();
        let kv: KvData = rmp_serde::from_slice(&data).map_err(sm_error)?;
        self.persist(meta, &data).map_err(sm_error)?;
        let mut inner = self.lock();
        inner.data = kv;
        inner.snapshot = Some((meta.clone(), data));
        inner.installed += 1;
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError<Nid>> {
        let inner = self.lock();
        Ok(inner.snapshot.as_ref().map(|(meta, data)| Snapshot {
            meta: meta.clone(),
            snapshot: Box::new(Cursor::new(data.clone())),
        }))
    }
}

// ----- the network: an in-memory router calling the target's Raft directly -----

#[derive(Clone, Default)]
struct Router {
    nodes: Arc<Mutex<BTreeMap<Nid, Raft<TypeConfig>>>>,
}

impl Router {
    fn nodes(&self) -> std::sync::MutexGuard<'_, BTreeMap<Nid, Raft<TypeConfig>>> {
        self.nodes.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

struct Connection {
    router: Router,
    target: Nid,
}

impl Connection {
    /// The target's Raft, or `Unreachable` while it is down.
    fn target(&self) -> Result<Raft<TypeConfig>, Unreachable> {
        self.router.nodes().get(&self.target).cloned().ok_or_else(|| {
            let down = std::io::Error::new(
                std::io::ErrorKind::NotConnected,
                format!("node {} is down", self.target),
            );
            Unreachable::new(&down)
        })
    }
}

impl RaftNetworkFactory<TypeConfig> for Router {
    type Network = Connection;

    async fn new_client(&mut self, target: Nid, _node: &BasicNode) -> Connection {
        Connection { router: self.clone(), target }
    }
}

impl RaftNetwork<TypeConfig> for Connection {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<Nid>, RPCError<Nid, BasicNode, RaftError<Nid>>> {
        let raft = self.target()?;
        raft.append_entries(rpc).await.map_err(|e| RemoteError::new(self.target, e).into())
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<InstallSnapshotResponse<Nid>, RPCError<Nid, BasicNode, RaftError<Nid, InstallSnapshotError>>>
    {
        let raft = self.target()?;
        raft.install_snapshot(rpc).await.map_err(|e| RemoteError::new(self.target, e).into())
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<Nid>,
        _option: RPCOption,
    ) -> Result<VoteResponse<Nid>, RPCError<Nid, BasicNode, RaftError<Nid>>> {
        let raft = self.target()?;
        raft.vote(rpc).await.map_err(|e| RemoteError::new(self.target, e).into())
    }

    fn backoff(&self) -> Backoff {
        Backoff::new(std::iter::repeat(Duration::from_millis(50)))
    }
}

// ----- nodes and the cluster -----

struct Node {
    raft: Raft<TypeConfig>,
    store: LogStore,
    sm: KvStateMachine,
}

struct Cluster {
    root: PathBuf,
    router: Router,
    config: Arc<openraft::Config>,
    nodes: BTreeMap<Nid, Node>,
}

impl Cluster {
    fn dir(&self, id: Nid) -> PathBuf {
        self.root.join(format!("node-{id}"))
    }

    /// Starts node `id` from its directory (creating it on the first start).
    async fn start(&mut self, id: Nid) -> Result<(), BoxError> {
        let dir = self.dir(id);
        std::fs::create_dir_all(&dir)?;
        let store = LogStore::start(rocklog::Config::new(dir.join("log")))?;
        let log = LogStorage::<TypeConfig>::open(store.group(1)).await?;
        let sm = KvStateMachine::open(dir.join("snapshot.bin"))?;
        let raft = Raft::new(id, Arc::clone(&self.config), self.router.clone(), log, sm.clone()).await?;
        self.router.nodes().insert(id, raft.clone());
        self.nodes.insert(id, Node { raft, store, sm });
        Ok(())
    }

    /// Takes node `id` off the network, stops it and closes its rocklog engine.
    async fn stop(&mut self, id: Nid) -> Result<(), BoxError> {
        self.router.nodes().remove(&id);
        if let Some(node) = self.nodes.remove(&id) {
            node.raft.shutdown().await?;
            node.store.shutdown().await?;
        }
        Ok(())
    }

    fn node(&self, id: Nid) -> Result<&Node, BoxError> {
        self.nodes.get(&id).ok_or_else(|| format!("node {id} is not running").into())
    }

    async fn leader(&self) -> Result<Nid, BoxError> {
        let any = self.nodes.values().next().ok_or("no node is running")?;
        let m = any
            .raft
            .wait(Some(Duration::from_secs(10)))
            .metrics(|m| m.current_leader.is_some(), "a leader")
            .await?;
        m.current_leader.ok_or_else(|| "no leader".into())
    }
}

/// Writes one request through the current leader, following a leader change.
async fn client_write(router: &Router, req: Request) -> Result<(), String> {
    for _ in 0..200 {
        let leader = {
            let nodes = router.nodes();
            let leader_id = nodes.values().find_map(|raft| raft.metrics().borrow().current_leader);
            leader_id.and_then(|id| nodes.get(&id).cloned())
        };
        if let Some(raft) = leader {
            match raft.client_write(req.clone()).await {
                Ok(_) => return Ok(()),
                Err(e) if e.forward_to_leader::<BasicNode>().is_some() => {}
                Err(e) => return Err(e.to_string()),
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Err("no leader accepted the request for 4 s".into())
}

/// Writes `n` requests numbered from `first` through the leader, `clients` at a time.
/// Returns the elapsed time and the sorted request latencies.
async fn write(
    router: &Router,
    first: u64,
    n: u64,
    clients: u64,
) -> Result<(Duration, Vec<Duration>), BoxError> {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let router = router.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut i = first + c;
            while i < first + n {
                let req = Request { key: format!("key-{i}"), value: format!("value-{i}") };
                let t = Instant::now();
                client_write(&router, req).await?;
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

fn delta(after: Stats, before: Stats) -> (u64, u64, u64, u64) {
    (
        after.commits - before.commits,
        after.syncs - before.syncs,
        after.commands - before.commands,
        after.appended_entries - before.appended_entries,
    )
}

fn report_stats(cluster: &Cluster, before: &BTreeMap<Nid, Stats>, leader: Nid) {
    println!("rocklog per node over both write phases:");
    println!("  node  role       commits    fsyncs  commands   entries  entries/commit  commands/commit");
    for (id, node) in &cluster.nodes {
        let (commits, syncs, commands, entries) =
            delta(node.store.stats(), before.get(id).copied().unwrap_or_default());
        let role = if *id == leader { "leader" } else { "follower" };
        let per = |x: u64| if commits == 0 { 0.0 } else { float(x) / float(commits) };
        println!(
            "  {id:>4}  {role:<9} {commits:>8} {syncs:>9} {commands:>9} {entries:>9} {:>15.1} {:>16.1}",
            per(entries),
            per(commands)
        );
    }
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let mut args = std::env::args().skip(1);
    let n: u64 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(1000);
    let clients: u64 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(64).clamp(1, n.max(1));

    let root = tempfile::tempdir()?;
    let config = openraft::Config {
        cluster_name: "rocklog-example".into(),
        heartbeat_interval: 50,
        election_timeout_min: 150,
        election_timeout_max: 300,
        // Snapshot and purge during the run, so the restarted follower meets a purged log.
        snapshot_policy: SnapshotPolicy::LogsSinceLast((n / 2).max(100)),
        max_in_snapshot_log_to_keep: (n / 10).max(10),
        ..Default::default()
    };
    let mut cluster = Cluster {
        root: root.path().to_owned(),
        router: Router::default(),
        config: Arc::new(config.validate()?),
        nodes: BTreeMap::new(),
    };
    println!("3 nodes, logs in {}/node-*/log", root.path().display());
    for id in 1..=3 {
        cluster.start(id).await?;
    }
    let members: BTreeMap<Nid, BasicNode> =
        (1..=3).map(|id| (id, BasicNode::new(format!("node-{id}")))).collect();
    cluster.node(1)?.raft.initialize(members).await?;
    let leader = cluster.leader().await?;
    println!("leader elected: node {leader}");
    let before: BTreeMap<Nid, Stats> =
        cluster.nodes.iter().map(|(id, node)| (*id, node.store.stats())).collect();

    let (elapsed, latencies) = write(&cluster.router, 0, n, clients).await?;
    report_phase(&format!("phase 1, 3 nodes, {clients} clients"), n, elapsed, &latencies);

    let leader = cluster.leader().await?;
    let follower = (1..=3).find(|id| *id != leader).ok_or("no follower")?;
    let follower_stats = cluster.node(follower)?.store.stats();
    cluster.stop(follower).await?;
    println!("node {follower} shut down (its rocklog engine closed)");

    let (elapsed, latencies) = write(&cluster.router, n, n, clients).await?;
    report_phase(&format!("phase 2, 2 nodes, {clients} clients"), n, elapsed, &latencies);
    let leader = cluster.leader().await?;
    let target = cluster.node(leader)?.raft.metrics().borrow().last_applied.map(|l| l.index);

    let restarted = Instant::now();
    cluster.start(follower).await?;
    let node = cluster.node(follower)?;
    let opened = node.raft.metrics().borrow().last_applied;
    node.raft.wait(Some(Duration::from_secs(30))).applied_index_at_least(target, "catch up").await?;
    println!(
        "node {follower} restarted from its directory (applied {} on open) and caught up to index {} in {:.0} ms",
        opened.map_or("nothing".into(), |l| l.to_string()),
        target.map_or("-".into(), |i| i.to_string()),
        restarted.elapsed().as_secs_f64() * 1e3,
    );
    let state = node.store.group(1).log_state()?;
    println!(
        "  its rocklog log: entries {}..={}, purged up to {}, snapshots installed since restart: {}",
        state.first_index.map_or("-".into(), |i| i.to_string()),
        state.last_index().map_or("-".into(), |i| i.to_string()),
        state.purged.map_or("-".into(), |p| p.to_string()),
        node.sm.lock().installed,
    );
    let (leader_data, follower_data) = (cluster.node(leader)?.sm.data(), node.sm.data());
    if leader_data.kv != follower_data.kv {
        return Err("the restarted node's state machine differs from the leader's".into());
    }
    println!("  state machines agree: {} keys", follower_data.kv.len());

    let stopped = delta(follower_stats, before.get(&follower).copied().unwrap_or_default());
    let mut before = before;
    before.insert(follower, Stats::default());
    report_stats(&cluster, &before, leader);
    println!(
        "  node {follower}'s row counts from its restart; before it stopped: {} commits, {} entries",
        stopped.0, stopped.3
    );

    for id in 1..=3 {
        cluster.stop(id).await?;
    }
    Ok(())
}
