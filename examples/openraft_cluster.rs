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

use std::io::Cursor;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use openraft::error::{
    ClientWriteError, InstallSnapshotError, RPCError, RaftError, RemoteError, Unreachable,
};
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

use self::kv::{BoxError, KvData, Request, Response, SnapshotFile};

// The version's names `cluster_example!` expands with.
type Nid = u64;
type Node = Raft<TypeConfig>;
type RaftConfig = openraft::Config;
type Down = Unreachable;

fn leader_of(raft: &Node) -> Option<Nid> {
    raft.metrics().borrow().current_leader
}

fn applied_of(raft: &Node) -> Option<LogId<Nid>> {
    raft.metrics().borrow().last_applied
}

fn forwards(e: &RaftError<Nid, ClientWriteError<Nid, BasicNode>>) -> bool {
    e.forward_to_leader::<BasicNode>().is_some()
}

cluster::cluster_example!(title: "openraft 0.9.25", config: {});

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

// ----- the network: the router calls the target's Raft directly -----

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
