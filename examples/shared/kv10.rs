//! The openraft 0.10 side of the examples' key-value store: its type config and its state
//! machine (a map whose snapshots go to a [`SnapshotFile`]). Included with `#[path]` by
//! `examples/openraft10_cluster.rs` and `tests/openraft10_suite.rs`, next to `kv.rs`.
#![allow(dead_code)] // each includer uses a different part

use std::io;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use futures_util::{Stream, TryStreamExt};
use openraft10::storage::{EntryResponder, RaftStateMachine};
use openraft10::type_config::alias::{LogIdOf, SnapshotMetaOf, SnapshotOf, StoredMembershipOf};
use openraft10::{EntryPayload, RaftSnapshotBuilder, StoredMembership};

use super::kv::{BoxError, KvData, Request, Response, SnapshotFile};

openraft10::declare_raft_types!(
    /// The types of the examples' openraft 0.10 Raft.
    pub TypeConfig:
        D = Request,
        R = Response,
);

/// The map and the openraft ids it is at.
pub type Data = KvData<LogIdOf<TypeConfig>, StoredMembershipOf<TypeConfig>>;

/// The snapshot's metadata.
pub type Meta = SnapshotMetaOf<TypeConfig>;

#[derive(Default)]
pub struct Inner {
    pub data: Data,
    pub snapshot: Option<(Meta, Vec<u8>)>,
    /// Snapshots installed from a leader.
    pub installed: u64,
}

/// A key-value `RaftStateMachine`. Clones share the state.
#[derive(Clone)]
pub struct KvStateMachine {
    inner: Arc<Mutex<Inner>>,
    file: SnapshotFile,
}

fn sm_error(e: impl Into<BoxError>) -> io::Error {
    io::Error::other(e)
}

impl KvStateMachine {
    /// The state machine of a node whose last snapshot is in `file` (if any).
    pub fn open(file: SnapshotFile) -> Result<Self, BoxError> {
        let mut inner = Inner::default();
        if let Some((meta, data)) = file.load::<Meta>()? {
            inner.data = rmp_serde::from_slice(&data)?;
            inner.snapshot = Some((meta, data));
        }
        Ok(KvStateMachine { inner: Arc::new(Mutex::new(inner)), file })
    }

    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl RaftSnapshotBuilder<TypeConfig> for KvStateMachine {
    type SnapshotData = Vec<u8>;

    async fn build_snapshot(&mut self) -> Result<SnapshotOf<TypeConfig, Vec<u8>>, io::Error> {
        let (meta, data) = {
            let inner = self.lock();
            let data = rmp_serde::to_vec_named(&inner.data).map_err(sm_error)?;
            let meta =
                Meta { last_log_id: inner.data.applied, last_membership: inner.data.membership.clone() };
            (meta, data)
        };
        self.file.persist(&meta, &data).map_err(sm_error)?;
        self.lock().snapshot = Some((meta.clone(), data.clone()));
        Ok(SnapshotOf::<TypeConfig, Vec<u8>> { meta, snapshot: data })
    }
}

impl RaftStateMachine<TypeConfig> for KvStateMachine {
    type SnapshotData = Vec<u8>;
    type SnapshotBuilder = Self;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogIdOf<TypeConfig>>, StoredMembershipOf<TypeConfig>), io::Error> {
        let inner = self.lock();
        Ok((inner.data.applied, inner.data.membership.clone()))
    }

    async fn apply<Strm>(&mut self, mut entries: Strm) -> Result<(), io::Error>
    where
        Strm: Stream<Item = Result<EntryResponder<TypeConfig>, io::Error>> + Unpin + Send,
    {
        while let Some((entry, responder)) = entries.try_next().await? {
            let response = {
                let mut inner = self.lock();
                inner.data.applied = Some(entry.log_id);
                match entry.payload {
                    EntryPayload::Blank => Response(None),
                    EntryPayload::Normal(req) => inner.data.set(req),
                    EntryPayload::Membership(m) => {
                        inner.data.membership = StoredMembership::new(Some(entry.log_id), m);
                        Response(None)
                    }
                }
            };
            if let Some(responder) = responder {
                responder.send(response);
            }
        }
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn install_snapshot(&mut self, meta: &Meta, snapshot: Vec<u8>) -> Result<(), io::Error> {
        let data: Data = rmp_serde::from_slice(&snapshot).map_err(sm_error)?;
        self.file.persist(meta, &snapshot).map_err(sm_error)?;
        let mut inner = self.lock();
        inner.data = data;
        inner.snapshot = Some((meta.clone(), snapshot));
        inner.installed += 1;
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<SnapshotOf<TypeConfig, Vec<u8>>>, io::Error> {
        let inner = self.lock();
        Ok(inner.snapshot.as_ref().map(|(meta, data)| SnapshotOf::<TypeConfig, Vec<u8>> {
            meta: meta.clone(),
            snapshot: data.clone(),
        }))
    }
}
