//! [`BlockingGroup`]: a group's writes for callers on their own OS threads.

use bytes::Bytes;

use super::Group;
use crate::error::Result;
use crate::records::{Entry, HardState, LogId};
use crate::writer::command::Op;

/// One group's writes as blocking calls, for a Raft node that runs on OS threads (a
/// raft-rs ready loop, say) rather than in an async runtime. Obtained from
/// [`Group::blocking`]; cheap to clone. Reads need no blocking form: [`Group`]'s are
/// synchronous already. [`LogStore::flush_blocking`](crate::LogStore::flush_blocking) is
/// the store-wide barrier, and dropping the last handle stops the writer and closes the
/// database (the drop waits for it), so a node on threads needs no runtime at all.
///
/// Each call sends its command to the writer, like the async [`Group`] method of the same
/// name, and parks the calling thread until the group commit holding it is durable. It
/// joins the same group commits as async callers, and fails in exactly the same cases,
/// writing nothing when it refuses. When the writer is idle (nothing queued, and its last
/// batch held at most one command), the call instead runs the commit itself, on the
/// calling thread: the same validation, write and fsync, with no thread to wake on either
/// side ([`Config::inline_commits`](crate::Config::inline_commits)). A lone caller then
/// waits for its write and fsync alone; under load, calls batch on the writer thread.
///
/// # Contract
///
/// Call these from threads that may block. From an async task, a call holds the runtime's
/// worker thread for a whole commit (an fsync); use [`Group`]'s async methods there. The
/// writer runs on its own thread and never waits on a caller, so a call cannot deadlock
/// against it once it runs: with [`LogStore::start`](crate::LogStore::start) it runs at
/// once. A writer from [`LogStore::open`](crate::LogStore::open) starts when
/// [`Writer::run`](crate::Writer::run) is first polled or
/// [`Writer::run_blocking`](crate::Writer::run_blocking) called, and until then a call
/// waits, as an async one would; so never make one on a current-thread runtime's own
/// thread before that runtime has polled `run`.
#[derive(Clone, Debug)]
pub struct BlockingGroup {
    group: Group,
}

impl BlockingGroup {
    pub(crate) fn new(group: Group) -> Self {
        BlockingGroup { group }
    }

    /// The group these writes go to, for its reads.
    pub fn group(&self) -> &Group {
        &self.group
    }

    fn write(&self, op: Op) -> Result<()> {
        self.group.store().write_blocking(self.group.id(), op)
    }

    /// [`Group::create`], blocking. Fails as it does.
    pub fn create(&self) -> Result<()> {
        self.write(Op::Create)
    }

    /// [`Group::append`], blocking: returns once `entries` are durable. Fails as it does,
    /// writing nothing.
    pub fn append(&self, entries: &[Entry]) -> Result<()> {
        self.write(Op::append(entries))
    }

    /// [`Group::truncate`], blocking. Fails as it does, writing nothing.
    pub fn truncate(&self, from: u64) -> Result<()> {
        self.write(Op::Truncate(from))
    }

    /// [`Group::purge`], blocking. Fails as it does, writing nothing.
    pub fn purge(&self, upto: LogId) -> Result<()> {
        self.write(Op::Purge(upto))
    }

    /// [`Group::save_hard_state`], blocking. Fails as it does.
    pub fn save_hard_state(&self, hard_state: HardState) -> Result<()> {
        self.write(Op::SaveHardState(hard_state))
    }

    /// [`Group::save_metadata`], blocking. Fails as it does.
    pub fn save_metadata(&self, metadata: impl Into<Bytes>) -> Result<()> {
        self.write(Op::SaveMetadata(metadata.into()))
    }

    /// [`Group::reset`], blocking. Fails as it does, writing nothing.
    pub fn reset(&self) -> Result<()> {
        self.write(Op::Reset)
    }

    /// [`Group::remove`], blocking. Fails as it does, writing nothing.
    pub fn remove(&self) -> Result<()> {
        self.write(Op::Remove)
    }
}
