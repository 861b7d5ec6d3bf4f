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

use std::future::Future;
use std::time::Duration;

use openraft10::async_runtime::watch::WatchReceiver;
use openraft10::error::{
    ClientWriteError, NetworkError, RPCError, RaftError, ReplicationClosed, StreamingError, Unreachable,
};
use openraft10::network::{Backoff, RPCOption, RaftNetworkFactory, RaftNetworkV2};
use openraft10::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, VoteRequest, VoteResponse,
};
use openraft10::type_config::alias::{LogIdOf, SnapshotOf, VoteOf};
use openraft10::{BasicNode, Raft, SnapshotPolicy};
use rocklog::openraft10::LogStorage;

use self::kv::{BoxError, Request, SnapshotFile};
use self::kv10::{KvStateMachine, TypeConfig};

// The version's names `cluster_example!` expands with.
type Nid = u64;
type Node = Raft<TypeConfig, KvStateMachine>;
type RaftConfig = openraft10::Config;
type Down = Unreachable<TypeConfig>;

fn leader_of(raft: &Node) -> Option<Nid> {
    raft.metrics().borrow_watched().current_leader
}

fn applied_of(raft: &Node) -> Option<LogIdOf<TypeConfig>> {
    raft.metrics().borrow_watched().last_applied
}

fn forwards(e: &RaftError<TypeConfig, ClientWriteError<TypeConfig>>) -> bool {
    e.forward_to_leader().is_some()
}

cluster::cluster_example!(
    title: "openraft 0.10.0-alpha.37",
    config: {
        // Group commit: up to this many client writes queued on the API channel become
        // one append (one fsync); every client of this example fits in one.
        api_batch_capacity: cluster::setting("API_BATCH_CAPACITY", 1024)?,
    }
);

// ----- the network: the router calls the target's Raft directly -----

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
