//! A 3-node openraft cluster in one process, each node's log in its own rocklog
//! directory, talking through an in-memory router.
//!
//! It elects a leader, writes N client requests, shuts a follower down, writes N more,
//! restarts the follower from its directory and waits until it has caught up with the
//! leader, then prints throughput, latency and rocklog's group-commit counters per node.
//! The run and the report are `examples/shared/cluster.rs`, shared with
//! `openraft10_cluster.rs` (openraft 0.10), so the two print comparable tables.
//!
//! ```sh
//! cargo build --release --workspace --all-features --examples
//! target/release/examples/openraft_cluster [N] [CLIENTS]   # defaults: 1000 64
//! ```
//!
//! The state machine is an in-memory map whose snapshots are written to a file beside the
//! log, so a restarted node rebuilds it from its snapshot plus the committed entries
//! rocklog kept.

#[path = "shared/cluster.rs"]
mod cluster;
#[path = "shared/kv.rs"]
mod kv;

use std::collections::BTreeMap;
use std::io::Cursor;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

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
use rocklog::LogStore;
use rocklog::openraft::LogStorage;

use self::cluster::Cluster;
use self::kv::{BoxError, KvData, Request, Response, SnapshotFile};

type Nid = u64;

openraft::declare_raft_types!(
    /// The types of the example's Raft.
    pub TypeConfig:
        D = Request,
        R = Response,
);

// ----- the state machine: a map, snapshotted to a file -----

type Data = KvData<LogId<Nid>, StoredMembership<Nid, BasicNode>>;
type Meta = SnapshotMeta<Nid, BasicNode>;

#[derive(Default)]
struct KvInner {
    data: Data,
    snapshot: Option<(Meta, Vec<u8>)>,
    installed: u64,
}

#[derive(Clone)]
struct KvStateMachine {
    inner: Arc<Mutex<KvInner>>,
    file: SnapshotFile,
}

fn sm_error(e: impl ToString) -> StorageError<Nid> {
    StorageIOError::write_state_machine(AnyError::error(e)).into()
}

impl KvStateMachine {
    /// The state machine of a node whose last snapshot is in `file` (if any).
    fn open(file: SnapshotFile) -> Result<Self, BoxError> {
        let mut inner = KvInner::default();
        if let Some((meta, data)) = file.load::<Meta>()? {
            inner.data = rmp_serde::from_slice(&data)?;
            inner.snapshot = Some((meta, data));
        }
        Ok(KvStateMachine { inner: Arc::new(Mutex::new(inner)), file })
    }

    fn lock(&self) -> MutexGuard<'_, KvInner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl RaftSnapshotBuilder<TypeConfig> for KvStateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<Nid>> {
        let (meta, data) = {
            let inner = self.lock();
            let data = rmp_serde::to_vec_named(&inner.data).map_err(sm_error)?;
            let last = inner.data.applied;
            let meta = Meta {
                last_log_id: last,
                last_membership: inner.data.membership.clone(),
                snapshot_id: format!("{}", last.map_or(0, |l| l.index)),
            };
            (meta, data)
        };
        self.file.persist(&meta, &data).map_err(sm_error)?;
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
                EntryPayload::Normal(req) => inner.data.set(req),
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
        meta: &Meta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<Nid>> {
        let data = snapshot.into_inner();
        let kv: Data = rmp_serde::from_slice(&data).map_err(sm_error)?;
        self.file.persist(meta, &data).map_err(sm_error)?;
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
    fn nodes(&self) -> MutexGuard<'_, BTreeMap<Nid, Raft<TypeConfig>>> {
        self.nodes.lock().unwrap_or_else(PoisonError::into_inner)
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

struct Running {
    raft: Raft<TypeConfig>,
    store: LogStore,
    sm: KvStateMachine,
}

struct Cluster09 {
    root: PathBuf,
    router: Router,
    config: Arc<openraft::Config>,
    nodes: BTreeMap<Nid, Running>,
}

impl Cluster09 {
    fn node(&self, id: Nid) -> Result<&Running, BoxError> {
        self.nodes.get(&id).ok_or_else(|| format!("node {id} is not running").into())
    }
}

impl Cluster for Cluster09 {
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

    fn ids(&self) -> Vec<Nid> {
        self.nodes.keys().copied().collect()
    }

    fn store(&self, id: Nid) -> Result<&LogStore, BoxError> {
        Ok(&self.node(id)?.store)
    }

    fn applied(&self, id: Nid) -> Result<(Option<u64>, String), BoxError> {
        let applied = self.node(id)?.raft.metrics().borrow().last_applied;
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
        let inner = self.node(id)?.sm.lock();
        Ok((inner.data.kv.clone(), inner.installed))
    }
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let (n, clients) = cluster::args()?;
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
    let mut cluster = Cluster09 {
        root: root.path().to_owned(),
        router: Router::default(),
        config: Arc::new(config.validate()?),
        nodes: BTreeMap::new(),
    };
    println!("openraft 0.9.25: 3 nodes, logs in {}/node-*/log", root.path().display());
    cluster::run(&mut cluster, n, clients).await
}
