//! The commands handles send to the writer: [`Command`] on the channel, [`Op`] the change to
//! one group.

use std::time::Instant;

use tokio::sync::oneshot;

use super::reply::Reply;
use crate::error::Result;
use crate::records::{Entry, HardState, LogId};

/// An entry already encoded by the caller's task, so the single writer thread only copies
/// bytes into the batch instead of also encoding every proposer's entries.
#[derive(Debug)]
pub(crate) struct EncodedEntry {
    pub index: u64,
    pub term: u64,
    pub payload_len: u64,
    pub bytes: Vec<u8>,
}

impl EncodedEntry {
    pub fn new(entry: &Entry) -> Self {
        EncodedEntry {
            index: entry.index,
            term: entry.term,
            payload_len: entry.payload.len() as u64,
            bytes: crate::storage::codec::encode_entry(entry),
        }
    }
}

/// A change to one group.
#[derive(Debug)]
pub(crate) enum Op {
    /// Create the group if it does not exist.
    Create,
    /// Append entries, replacing any suffix from the first one's index.
    Append(Vec<EncodedEntry>),
    /// Delete `[from, ∞)`.
    Truncate(u64),
    /// Delete `(-∞, upto.index]` and remember `upto`.
    Purge(LogId),
    /// Replace the hard state.
    SaveHardState(HardState),
    /// Replace the opaque metadata record.
    SaveMetadata(bytes::Bytes),
    /// Delete the whole log and the purge boundary; keep the hard state and metadata.
    Reset,
    /// Delete everything of the group.
    Remove,
}

impl Op {
    /// The append of `entries`, each encoded once here, on the caller's thread.
    pub fn append(entries: &[Entry]) -> Op {
        Op::Append(entries.iter().map(EncodedEntry::new).collect())
    }

    /// A short name for logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Create => "create",
            Op::Append(_) => "append",
            Op::Truncate(_) => "truncate",
            Op::Purge(_) => "purge",
            Op::SaveHardState(_) => "save_hard_state",
            Op::SaveMetadata(_) => "save_metadata",
            Op::Reset => "reset",
            Op::Remove => "remove",
        }
    }

    /// Number of entries and payload bytes the op carries.
    pub fn size(&self) -> (u64, u64) {
        match self {
            Op::Append(entries) => (entries.len() as u64, entries.iter().map(|e| e.bytes.len() as u64).sum()),
            _ => (0, 0),
        }
    }
}

/// One message on the writer's channel.
#[derive(Debug)]
pub(crate) enum Command {
    /// A change to a group. `visible`, when set, hears the outcome as soon as the change
    /// is written and readable, before its fsync; `reply` then hears the durable outcome.
    Write {
        group: u64,
        op: Op,
        reply: Reply,
        visible: Option<oneshot::Sender<Result<()>>>,
        enqueued: Instant,
    },
    /// Make everything sent before it durable (a no-op barrier under `Durability::Sync`).
    Flush { reply: Reply },
    /// Commit what is queued, then stop.
    Shutdown,
}
