//! A 3-node openraft **0.10** cluster in one process, each node's log in its own rocklog
//! directory (`rocklog::openraft10::LogStorage`), talking through an in-memory router.
//!
//! The same run and report as `openraft_cluster.rs` (openraft 0.9), from
//! `examples/shared/cluster.rs`: it elects a leader, writes N client requests, shuts a
//! follower down, writes N more, restarts the follower from its directory and waits
//! until it has caught up with the leader, then prints throughput, latency and rocklog's
//! group-commit counters per node.
//!
//! ```sh
//! cargo build --release --workspace --all-features --examples
//! target/release/examples/openraft10_cluster [N] [CLIENTS]   # defaults: 1000 64
//! ```
//!
//! openraft 0.10 merges the client writes queued on its API channel (up to
//! `api_batch_capacity`) into one append and submits appends without waiting for their
//! flush, so the leader's entries share fsyncs; see `docs/adapters.md`.

#[path = "shared/cluster.rs"]
mod cluster;
#[path = "shared/kv.rs"]
mod kv;
#[path = "shared/kv10.rs"]
mod kv10;

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use openraft10::async_runtime::watch::WatchReceiver;
use openraft10::error::{NetworkError, RPCError, ReplicationClosed, StreamingError, Unreachable};
use openraft10::network::{Backoff, RPCOption, RaftNetworkFactory, RaftNetworkV2};
use openraft10::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, VoteRequest, VoteResponse,
};
use openraft10::type_config::alias::{SnapshotOf, VoteOf};
use openraft10::{BasicNode, Raft, SnapshotPolicy};
use rocklog::LogStore;
use rocklog::openraft10::LogStorage;

use self::cluster::Cluster;
use self::kv::{BoxError, Request, SnapshotFile};
use self::kv10::{KvStateMachine, TypeConfig};

type Nid = u64;
type Node = Raft<TypeConfig, KvStateMachine>;

// ----- the network: an in-memory router calling the target's Raft directly -----

#[derive(Clone, Default)]
struct Router {
    nodes: Arc<Mutex<BTreeMap<Nid, Node>>>,
}

impl Router {
    fn nodes(&self) -> MutexGuard<'_, BTreeMap<Nid, Node>> {
        self.nodes.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

struct Connection {
    router: Router,
    target: Nid,
}

impl Connection {
    /// The target's Raft, or `Unreachable` while it is down.
    fn target(&self) -> Result<Node, Unreachable<TypeConfig>> {
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

impl RaftNetworkV2<TypeConfig> for Connection {
    type SnapshotData = Vec<u8>;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<TypeConfig>, RPCError<TypeConfig>> {
        let raft = self.target()?;
        raft.append_entries(rpc).await.map_err(|e| NetworkError::new(&e).into())
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        let raft = self.target()?;
        raft.vote(rpc).await.map_err(|e| NetworkError::new(&e).into())
    }

    async fn full_snapshot(
        &mut self,
        vote: VoteOf<TypeConfig>,
        snapshot: SnapshotOf<TypeConfig, Vec<u8>>,
        _cancel: impl Future<Output = ReplicationClosed> + Send + 'static,
        _option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        let raft = self.target()?;
        raft.install_full_snapshot(vote, snapshot).await.map_err(|e| NetworkError::new(&e).into())
    }

    fn backoff(&self) -> Option<Backoff> {
        Some(Backoff::new(std::iter::repeat(Duration::from_millis(50))))
    }
}

// ----- nodes and the cluster -----

struct Running {
    raft: Node,
    store: LogStore,
    sm: KvStateMachine,
}

struct Cluster10 {
    root: PathBuf,
    router: Router,
    config: Arc<openraft10::Config>,
    nodes: BTreeMap<Nid, Running>,
}

impl Cluster10 {
    fn node(&self, id: Nid) -> Result<&Running, BoxError> {
        self.nodes.get(&id).ok_or_else(|| format!("node {id} is not running").into())
    }
}

impl Cluster for Cluster10 {
    type Client = Router;

    async fn start(&mut self, id: Nid) -> Result<(), BoxError> {
        let dir = self.root.join(format!("node-{id}"));
        std::fs::create_dir_all(&dir)?;
        let store = LogStore::start(rocklog::Config::new(dir.join("log")))?;
        let log = LogStorage::<TypeConfig>::open(store.group(1)).await?;
        let sm = KvStateMachine::open(SnapshotFile(Some(dir.join("snapshot.bin"))))?;
        let raft = Raft::new(id, Arc::clone(&self.config), self.router.clone(), log, sm.clone()).await?;
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
        let members: BTreeMap<Nid, BasicNode> =
            (1..=3).map(|id| (id, BasicNode::new(format!("node-{id}")))).collect();
        self.node(1)?.raft.initialize(members).await?;
        Ok(())
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

    fn client(&self) -> Router {
        self.router.clone()
    }

    async fn write(router: &Router, req: Request) -> Result<(), String> {
        for _ in 0..200 {
            let leader = {
                let nodes = router.nodes();
                let leader_id =
                    nodes.values().find_map(|raft| raft.metrics().borrow_watched().current_leader);
                leader_id.and_then(|id| nodes.get(&id).cloned())
            };
            if let Some(raft) = leader {
                match raft.client_write(req.clone()).await {
                    Ok(_) => return Ok(()),
                    Err(e) if e.forward_to_leader().is_some() => {}
                    Err(e) => return Err(e.to_string()),
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Err("no leader accepted the request for 4 s".into())
    }

    fn ids(&self) -> Vec<Nid> {
        self.nodes.keys().copied().collect()
    }

    fn store(&self, id: Nid) -> Result<&LogStore, BoxError> {
        Ok(&self.node(id)?.store)
    }

    fn applied(&self, id: Nid) -> Result<(Option<u64>, String), BoxError> {
        let applied = self.node(id)?.raft.metrics().borrow_watched().last_applied;
        Ok((applied.map(|l| l.index), applied.map_or("nothing".into(), |l| l.to_string())))
    }

    async fn wait_applied(&self, id: Nid, index: Option<u64>) -> Result<(), BoxError> {
        self.node(id)?
            .raft
            .wait(Some(Duration::from_secs(30)))
            .applied_index_at_least(index, "catch up")
            .await?;
        Ok(())
    }

    fn kv(&self, id: Nid) -> Result<(BTreeMap<String, String>, u64), BoxError> {
        let sm = &self.node(id)?.sm;
        Ok((sm.data().kv, sm.lock().installed))
    }
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let (n, clients) = cluster::args()?;
    let root = tempfile::tempdir()?;
    let config = openraft10::Config {
        cluster_name: "rocklog-example".into(),
        heartbeat_interval: 50,
        election_timeout_min: 150,
        election_timeout_max: 300,
        // Snapshot and purge during the run, so the restarted follower meets a purged log.
        snapshot_policy: SnapshotPolicy::LogsSinceLast((n / 2).max(100)),
        max_in_snapshot_log_to_keep: (n / 10).max(10),
        // Group commit: up to this many queued client writes become one append (one
        // fsync); every client of this example fits in one.
        api_batch_capacity: 1024,
        ..Default::default()
    };
    let mut cluster = Cluster10 {
        root: root.path().to_owned(),
        router: Router::default(),
        config: Arc::new(config.validate()?),
        nodes: BTreeMap::new(),
    };
    println!("openraft 0.10.0-alpha.37: 3 nodes, logs in {}/node-*/log", root.path().display());
    cluster::run(&mut cluster, n, clients).await
}
