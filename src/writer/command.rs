//! The messages handles send to the writer.

use std::time::Instant;

use tokio::sync::oneshot;

use crate::error::Result;
use crate::records::{Entry, HardState, LogId};

/// Where the writer sends a command's outcome, after the batch holding it is durable.
#[derive(Debug)]
pub(crate) enum Reply {
    /// A handle awaiting the outcome.
    Channel(oneshot::Sender<Result<()>>),
    /// A callback the writer thread calls with the outcome ([`Group::append_then`]).
    ///
    /// [`Group::append_then`]: crate::Group::append_then
    Callback(OnDurable),
}

impl Reply {
    /// Delivers the outcome. A dropped receiver means the caller went away; the write
    /// happened anyway.
    pub fn send(self, result: Result<()>) {
        match self {
            Reply::Channel(tx) => {
                let _ = tx.send(result);
            }
            Reply::Callback(mut cb) => {
                if let Some(f) = cb.f.take() {
                    f(result);
                }
            }
        }
    }

    /// From now on the caller has been told the command is visible, so the callback must
    /// run whatever happens: dropping it unanswered reports [`Error::Closed`](crate::Error::Closed).
    pub fn arm(&mut self) {
        if let Reply::Callback(cb) = self {
            cb.armed = true;
        }
    }
}

/// The durable-outcome callback of a pipelined append. Until armed (the append was
/// accepted and is visible) it is dropped silently, because the caller learns the refusal
/// from the visible reply; once armed, dropping it unanswered (the writer died) calls it
/// with `Closed`.
pub(crate) struct OnDurable {
    f: Option<Box<dyn FnOnce(Result<()>) + Send>>,
    armed: bool,
}

impl OnDurable {
    pub fn new(f: impl FnOnce(Result<()>) + Send + 'static) -> Self {
        OnDurable { f: Some(Box::new(f)), armed: false }
    }
}

impl std::fmt::Debug for OnDurable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnDurable").field("armed", &self.armed).finish_non_exhaustive()
    }
}

impl Drop for OnDurable {
    fn drop(&mut self) {
        if self.armed
            && let Some(f) = self.f.take()
        {
            f(Err(crate::Error::Closed));
        }
    }
}

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
            bytes: crate::codec::encode_entry(entry),
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
pub(crate) enum Msg {
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
