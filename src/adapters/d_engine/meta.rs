//! d-engine's `MetaStore` over a rocklog group.

use async_trait::async_trait;
use d_engine_core::{Error as DError, HardState as DHardState, MetaStore};

use super::bridge;
use super::codec::{decode_hard_state, encode_hard_state};
use crate::config::Durability;
use crate::error::Error;
use crate::handle::Group;

/// d-engine's meta store over one rocklog group: its hard state, encoded as the module
/// docs describe.
#[derive(Clone, Debug)]
pub struct DEngineMetaStore {
    group: Group,
}

impl DEngineMetaStore {
    pub(super) fn new(group: Group) -> Self {
        DEngineMetaStore { group }
    }

    /// The rocklog group holding the hard state.
    pub fn group(&self) -> &Group {
        &self.group
    }

    fn durable(&self) -> bool {
        self.group.store().config().durability == Durability::Sync
    }
}

#[async_trait]
impl MetaStore for DEngineMetaStore {
    /// Replaces the hard state in one atomic record, durable when this returns under
    /// `Durability::Sync`. Blocks the calling thread for the write (see the module docs).
    ///
    /// Fails when the engine cannot write (poisoned, failed fsync, closed).
    fn save_hard_state(&self, state: &DHardState) -> Result<(), DError> {
        Ok(bridge::wait(self.group.save_hard_state(encode_hard_state(state)))?)
    }

    /// The last saved hard state, `None` if none was. No disk read.
    ///
    /// Fails when the stored hard state was not written by this adapter.
    fn load_hard_state(&self) -> Result<Option<DHardState>, DError> {
        match self.group.hard_state() {
            Ok(Some(hs)) => Ok(Some(decode_hard_state(self.group.id(), hs)?)),
            Ok(None) | Err(Error::GroupNotFound(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Makes the saved hard state durable: an fsync under `Durability::Buffered`, nothing
    /// to do under `Sync`. Blocks the calling thread.
    ///
    /// Fails when the fsync fails or the engine is closed.
    fn flush(&self) -> Result<(), DError> {
        if self.durable() {
            return Ok(());
        }
        Ok(bridge::wait(self.group.store().flush())?)
    }

    /// [`flush`](MetaStore::flush), awaited.
    ///
    /// Fails as `flush` does.
    async fn flush_async(&self) -> Result<(), DError> {
        if self.durable() {
            return Ok(());
        }
        Ok(self.group.store().flush().await?)
    }
}
