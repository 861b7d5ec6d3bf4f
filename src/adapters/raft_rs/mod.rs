//! A [raft-rs](https://docs.rs/raft/0.7) 0.7 storage on rocklog (cargo feature `raft-rs`).
//!
//! [`RaftStorage`] implements raft-rs's [`Storage`] trait over one rocklog [`Group`], and
//! adds the asynchronous writes a `RawNode`'s ready loop needs ([`RaftStorage::append`],
//! [`RaftStorage::set_hard_state`], [`RaftStorage::apply_snapshot`], ...). Many Raft groups
//! can share one [`LogStore`](crate::LogStore), each `RaftStorage` on its own group, all
//! group-committed by the one writer. raft-rs's reads are synchronous and so are
//! rocklog's: no runtime is involved in reading.
//!
//! ```no_run
//! use raft::{Config, RawNode, eraftpb::ConfState};
//! use rocklog::raft_rs::RaftStorage;
//!
//! # async fn demo(store: rocklog::LogStore, logger: slog::Logger) -> raft::Result<()> {
//! let mut storage = RaftStorage::open(store.group(1)).await?; // repairs a cut apply_snapshot
//! if !raft::Storage::initial_state(&storage)?.initialized() {
//!     storage.set_conf_state(ConfState::from((vec![1], vec![]))).await?;
//! }
//! let mut node = RawNode::new(&Config { id: 1, ..Default::default() }, storage, &logger)?;
//! // The ready loop: every write returns once it is fsynced.
//! let ready = node.ready();
//! if !ready.snapshot().is_empty() {
//!     node.mut_store().apply_snapshot(ready.snapshot().clone()).await?;
//! }
//! node.mut_store().append(ready.entries()).await?;
//! if let Some(hs) = ready.hs() {
//!     node.mut_store().set_hard_state(hs).await?;
//! }
//! let light = node.advance(ready);
//! if let Some(commit) = light.commit_index() {
//!     node.mut_store().set_commit(commit).await?;
//! }
//! # Ok(()) }
//! ```
//!
//! # What goes where
//!
//! | raft-rs | rocklog |
//! |---|---|
//! | `Entry` | [`Entry`](crate::Entry) at the entry's index and term; the payload is the whole `eraftpb::Entry` in protobuf (see below) |
//! | `HardState { term, vote, commit }` | [`HardState`] `{ term, vote, commit }`, vote 0 (none) ↔ `None` |
//! | `ConfState`, last snapshot's index and term | the group's metadata record ([`Group::save_metadata`]): an `eraftpb::SnapshotMetadata` whose `conf_state` is the current conf state |
//! | `append(entries)` | [`Group::append`]: an append starting inside the log replaces the conflicting suffix in the same atomic write |
//! | `compact(i)` | [`Group::purge`]`(i - 1 @ term(i - 1))` |
//! | `first_index()` / `last_index()` | the first entry, or the purge boundary + 1 (1 for a fresh log) / the last entry, or the purge boundary (0 for a fresh log) |
//! | `term(first_index() - 1)` | the purge boundary's term (0 for a fresh log) |
//!
//! **Entries.** The payload is the `eraftpb::Entry` exactly as raft-rs encodes it, index
//! and term included. Every field (`entry_type`, `data`, `context`, `sync_log`, fields a
//! later raft-proto adds, unknown fields) round-trips without the adapter knowing them,
//! and a stored payload's length *is* the entry's `compute_size()`, which is what raft-rs's
//! `max_size` limits count: rocklog's byte-limited range read then cuts exactly where
//! raft-rs's `limit_size` would, without decoding entries past the limit. Index and term
//! are stored twice (a few bytes); reading checks that the copies agree and reports
//! [`Error::Corruption`] when they do not.
//!
//! **Snapshots.** rocklog keeps logs, not state machines: [`Storage::snapshot`] answers the
//! metadata of a snapshot at the commit index (as raft-rs's `MemStorage` does, which assumes
//! everything committed is applied), with the current conf state and no data. An
//! application that sends snapshots supplies the data, and may pick another index, with
//! [`RaftStorage::with_snapshot_builder`].
//!
//! # Durability and crashes
//!
//! Every write returns once the group commit holding it is durable (under
//! [`Durability::Sync`](crate::Durability::Sync), once fsynced), and each write is one
//! atomic rocklog command, except [`RaftStorage::apply_snapshot`], which takes up to four:
//! the metadata record (conf state and the snapshot's index and term), the hard state
//! (commit raised to the snapshot index, term to at least its term), a reset of a log that
//! reaches the snapshot index, and the purge boundary at the snapshot's index and term. A
//! crash can cut between them; the metadata record goes first, and [`RaftStorage::open`]
//! finishes whatever of the rest is missing, so a reopened storage shows the snapshot
//! applied whole (or, when the crash came before the metadata record, not at all).
//!
//! # Errors
//!
//! rocklog's [`Error::Compacted`] becomes `StorageError::Compacted`; every other rocklog
//! error becomes `raft::Error::Store(StorageError::Other(e))` with the rocklog [`Error`]
//! inside (downcast it to look). Protobuf failures are `raft::Error::CodecError`. Where
//! `MemStorage` panics (a read past the end, a compaction past the end, an append below
//! the first index), the adapter returns `StorageError::Unavailable` or
//! `StorageError::Compacted` instead.

mod codec;

use std::cmp;
use std::fmt;

use protobuf::Message as _;
use raft::eraftpb::{self, ConfState, Snapshot, SnapshotMetadata};
use raft::{GetEntriesContext, NO_LIMIT, RaftState, Storage, StorageError};

use self::codec::{decode_entry, encode_entry, store_error};
use crate::error::Error;
use crate::handle::Group;
use crate::records::{HardState, LogId};
use crate::state::LogState;

type SnapshotBuilder = dyn Fn(SnapshotMetadata, u64, u64) -> raft::Result<Snapshot> + Send + Sync;

/// raft-rs's [`Storage`] over one rocklog [`Group`]. See the [module docs](self).
///
/// Open one per Raft group with [`RaftStorage::open`] and hand it to `raft::RawNode::new`;
/// reach it again through `RawNode::store` / `RawNode::mut_store` to persist a `Ready`.
/// Only this value may write to its group: it keeps the conf state in memory (loaded by
/// `open`) and in the group's metadata record.
pub struct RaftStorage {
    group: Group,
    /// `conf_state`: the current conf state; `index`/`term`: the last snapshot applied.
    meta: SnapshotMetadata,
    snapshot_builder: Option<Box<SnapshotBuilder>>,
}

impl fmt::Debug for RaftStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RaftStorage")
            .field("group", &self.group.id())
            .field("meta", &self.meta)
            .field("snapshot_builder", &self.snapshot_builder.is_some())
            .finish()
    }
}

impl RaftStorage {
    /// Opens raft-rs's storage in `group` (which need not exist yet): loads the conf state
    /// and the last applied snapshot's metadata, and finishes an
    /// [`apply_snapshot`](Self::apply_snapshot) a crash interrupted.
    ///
    /// Fails with `raft::Error::CodecError` when the group's metadata record is not this
    /// adapter's, and with `StorageError::Other` when rocklog cannot read it or cannot
    /// write the repair (the engine is closed or poisoned, or RocksDB fails).
    pub async fn open(group: Group) -> raft::Result<Self> {
        let meta = match group.metadata() {
            Ok(Some(bytes)) => SnapshotMetadata::parse_from_carllerche_bytes(&bytes)?,
            Ok(None) | Err(Error::GroupNotFound(_)) => SnapshotMetadata::default(),
            Err(e) => return Err(store_error(e)),
        };
        let storage = RaftStorage { group, meta, snapshot_builder: None };
        storage.finish_snapshot().await?;
        Ok(storage)
    }

    /// Makes [`Storage::snapshot`] call `builder(metadata, request_index, to)` and answer
    /// what it returns. `metadata` is what the adapter would answer (commit index, its
    /// term, the current conf state); the builder adds the application's data, and may
    /// answer another index (at least `request_index`, with that index's term and conf
    /// state) or `StorageError::SnapshotTemporarilyUnavailable` while it prepares one.
    #[must_use]
    pub fn with_snapshot_builder(
        mut self,
        builder: impl Fn(SnapshotMetadata, u64, u64) -> raft::Result<Snapshot> + Send + Sync + 'static,
    ) -> Self {
        self.snapshot_builder = Some(Box::new(builder));
        self
    }

    /// The rocklog group holding the log.
    pub fn group(&self) -> &Group {
        &self.group
    }

    /// The current conf state (the last one set or applied with a snapshot).
    pub fn conf_state(&self) -> &ConfState {
        self.meta.get_conf_state()
    }

    /// The metadata of the last snapshot applied (index 0 when none was); its conf state
    /// is the current one.
    pub fn snapshot_metadata(&self) -> &SnapshotMetadata {
        &self.meta
    }

    /// Persists `entries` (consecutive, as a `Ready` holds them). When they start at or
    /// below the last index, the log from that index on is replaced by them in the same
    /// atomic write (Raft's conflict resolution). Returns once durable.
    ///
    /// Fails with `StorageError::Compacted` when they start below
    /// [`first_index`](Storage::first_index) (`MemStorage` panics), and with
    /// `StorageError::Other` holding rocklog's refusal when they leave a gap, are not
    /// consecutive, make terms go back or hold an entry over `max_entry_bytes`, or when
    /// rocklog cannot write.
    pub async fn append(&mut self, entries: &[eraftpb::Entry]) -> raft::Result<()> {
        let Some(head) = entries.first() else {
            return Ok(());
        };
        if head.index < self.first_index()? {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        let encoded = entries.iter().map(encode_entry).collect::<raft::Result<Vec<_>>>()?;
        self.group.append(&encoded).await.map_err(store_error)
    }

    /// Discards the entries below `compact_index` (as `MemStorage::compact` does): purges
    /// up to `compact_index - 1`, which stays answerable by [`term`](Storage::term). A
    /// no-op at or below [`first_index`](Storage::first_index). It is the application's
    /// job not to compact past its applied index.
    ///
    /// Fails with `StorageError::Unavailable` when `compact_index` is above
    /// `last_index() + 1` (`MemStorage` panics), and with `StorageError::Other` when
    /// rocklog cannot read the term or cannot write.
    pub async fn compact(&mut self, compact_index: u64) -> raft::Result<()> {
        if compact_index <= self.first_index()? {
            return Ok(());
        }
        if compact_index > self.last_index()?.saturating_add(1) {
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        let upto = compact_index - 1;
        let term = self.term(upto)?;
        self.group.purge(LogId::new(term, upto)).await.map_err(store_error)
    }

    /// Saves raft-rs's hard state (term, vote, commit). Returns once durable.
    ///
    /// Fails with `StorageError::Other` when rocklog cannot write.
    pub async fn set_hard_state(&mut self, hard_state: &eraftpb::HardState) -> raft::Result<()> {
        let vote = (hard_state.vote != 0).then_some(hard_state.vote);
        let hs = HardState { term: hard_state.term, vote, commit: hard_state.commit };
        self.group.save_hard_state(hs).await.map_err(store_error)
    }

    /// Saves a new commit index, keeping term and vote (for `LightReady::commit_index`).
    /// Returns once durable.
    ///
    /// Fails with `StorageError::Other` when rocklog cannot write.
    pub async fn set_commit(&mut self, commit: u64) -> raft::Result<()> {
        let hs = HardState { commit, ..self.saved_hard_state()? };
        self.group.save_hard_state(hs).await.map_err(store_error)
    }

    /// Saves the conf state (the initial configuration, or one a conf change applied).
    /// Returns once durable.
    ///
    /// Fails with `raft::Error::CodecError` when it does not encode, and with
    /// `StorageError::Other` when rocklog cannot write.
    pub async fn set_conf_state(&mut self, conf_state: ConfState) -> raft::Result<()> {
        let mut meta = self.meta.clone();
        meta.set_conf_state(conf_state);
        self.save_meta(meta).await
    }

    /// Installs a received snapshot's metadata (as `MemStorage::apply_snapshot` does):
    /// every entry goes, the log restarts after the snapshot's index (which
    /// [`term`](Storage::term) answers with the snapshot's term), the conf state becomes
    /// the snapshot's, and the hard state's commit rises to the snapshot index and its
    /// term to at least the snapshot's. The snapshot's data is the application's to
    /// apply. Returns once all of it is durable; see the [module docs](self#durability-and-crashes)
    /// for what a crash in the middle leaves.
    ///
    /// Fails with `StorageError::SnapshotOutOfDate` when the snapshot's index is below
    /// [`first_index`](Storage::first_index), `raft::Error::CodecError` when its metadata
    /// does not encode, and `StorageError::Other` when rocklog cannot write.
    pub async fn apply_snapshot(&mut self, mut snapshot: Snapshot) -> raft::Result<()> {
        let meta = snapshot.take_metadata();
        if meta.index < self.first_index()? {
            return Err(raft::Error::Store(StorageError::SnapshotOutOfDate));
        }
        self.save_meta(meta).await?;
        self.finish_snapshot().await
    }

    /// Saves `meta` as the group's metadata record, then adopts it.
    async fn save_meta(&mut self, meta: SnapshotMetadata) -> raft::Result<()> {
        let bytes = meta.write_to_bytes()?;
        self.group.save_metadata(bytes).await.map_err(store_error)?;
        self.meta = meta;
        Ok(())
    }

    /// Brings the hard state and the log in line with the last applied snapshot: what
    /// [`Self::apply_snapshot`] does after saving the metadata record, and what
    /// [`Self::open`] repeats when a crash cut it short. Each step is skipped when it is
    /// already done, so it is a no-op on a consistent group.
    async fn finish_snapshot(&self) -> raft::Result<()> {
        let (index, term) = (self.meta.index, self.meta.term);
        if index == 0 {
            return Ok(());
        }
        let hs = self.saved_hard_state()?;
        if hs.commit < index || hs.term < term {
            let hs = HardState {
                term: cmp::max(hs.term, term),
                vote: hs.vote,
                commit: cmp::max(hs.commit, index),
            };
            self.group.save_hard_state(hs).await.map_err(store_error)?;
        }
        let state = self.log_state()?;
        if state.purged_index().is_some_and(|p| p >= index) {
            return Ok(());
        }
        if !state.is_empty() && state.last_index().is_some_and(|last| last >= index) {
            // Entries at and past the snapshot index would survive a purge (or conflict
            // with its term): the log restarts empty, as in `MemStorage`.
            self.group.reset().await.map_err(store_error)?;
        }
        self.group.purge(LogId::new(term, index)).await.map_err(store_error)
    }

    fn saved_hard_state(&self) -> raft::Result<HardState> {
        match self.group.hard_state() {
            Ok(hs) => Ok(hs.unwrap_or_default()),
            Err(Error::GroupNotFound(_)) => Ok(HardState::default()),
            Err(e) => Err(store_error(e)),
        }
    }

    /// The group's log shape; a group that does not exist yet is a fresh, empty log.
    fn log_state(&self) -> raft::Result<LogState> {
        match self.group.log_state() {
            Ok(state) => Ok(state),
            Err(Error::GroupNotFound(_)) => Ok(LogState::default()),
            Err(e) => Err(store_error(e)),
        }
    }
}

/// raft-rs's first index of `state`: the first entry, else the purge boundary + 1, else 1.
fn first_of(state: &LogState) -> u64 {
    state.first_index.unwrap_or_else(|| state.purged_index().map_or(1, |p| p.saturating_add(1)))
}

/// raft-rs's last index of `state`: the last entry, else the purge boundary, else 0.
fn last_of(state: &LogState) -> u64 {
    state.last_index().unwrap_or(0)
}

impl Storage for RaftStorage {
    /// The saved hard state (vote `None` as 0; all zero when none was saved) and the
    /// current conf state.
    ///
    /// Fails with `StorageError::Other` when rocklog cannot answer (never for a group that
    /// does not exist yet: that is a fresh storage).
    fn initial_state(&self) -> raft::Result<RaftState> {
        let saved = self.saved_hard_state()?;
        let hard_state = eraftpb::HardState {
            term: saved.term,
            vote: saved.vote.unwrap_or(0),
            commit: saved.commit,
            ..Default::default()
        };
        Ok(RaftState::new(hard_state, self.meta.get_conf_state().clone()))
    }

    /// The entries `[low, high)`, cut before the entry that would take their total encoded
    /// size over `max_size` (at least one entry is returned). Entries are read
    /// synchronously; `context` is not used.
    ///
    /// Fails with `StorageError::Compacted` when `low` is below
    /// [`first_index`](Storage::first_index), `StorageError::Unavailable` when `high` is
    /// above `last_index() + 1` (`MemStorage` panics), and `StorageError::Other` when
    /// rocklog cannot read an entry or one does not decode.
    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        _context: GetEntriesContext,
    ) -> raft::Result<Vec<eraftpb::Entry>> {
        let state = self.log_state()?;
        if low < first_of(&state) {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        if u128::from(high) > u128::from(last_of(&state)) + 1 {
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        if low >= high {
            return Ok(Vec::new());
        }
        let max_bytes = max_size.into().filter(|&m| m != NO_LIMIT);
        let stored = self.group.entries(low..high, max_bytes).map_err(store_error)?;
        if stored.first().map(|e| e.index) != Some(low) {
            // The log changed under the read (another writer on this group).
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        stored.iter().map(|e| decode_entry(self.group.id(), e)).collect()
    }

    /// The term of entry `idx`, for `idx` in `first_index() - 1 ..= last_index()`: at
    /// `first_index() - 1` the purge boundary's term (0 for a log that was never purged).
    ///
    /// Fails with `StorageError::Compacted` below that range, `StorageError::Unavailable`
    /// above it, and `StorageError::Other` when rocklog cannot read the entry.
    fn term(&self, idx: u64) -> raft::Result<u64> {
        let state = self.log_state()?;
        let first = first_of(&state);
        if idx.checked_add(1) == Some(first) {
            return Ok(state.purged.filter(|p| p.index == idx).map_or(0, |p| p.term));
        }
        if idx < first {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        if idx > last_of(&state) {
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        match self.group.term(idx) {
            Ok(Some(term)) => Ok(term),
            Ok(None) => Err(raft::Error::Store(StorageError::Unavailable)),
            Err(e) => Err(store_error(e)),
        }
    }

    /// The first entry's index; for an empty log the purge boundary + 1, or 1 when it was
    /// never purged.
    ///
    /// Fails with `StorageError::Other` only when the engine cannot answer.
    fn first_index(&self) -> raft::Result<u64> {
        self.log_state().map(|s| first_of(&s))
    }

    /// The last entry's index; for an empty log the purge boundary, or 0 when it was never
    /// purged.
    ///
    /// Fails with `StorageError::Other` only when the engine cannot answer.
    fn last_index(&self) -> raft::Result<u64> {
        self.log_state().map(|s| last_of(&s))
    }

    /// A snapshot at the saved commit index (at least the purge boundary), with that
    /// index's term, the current conf state and no data; or what the
    /// [snapshot builder](RaftStorage::with_snapshot_builder) makes of it.
    ///
    /// Fails with `StorageError::SnapshotTemporarilyUnavailable` when that index is below
    /// `request_index` (`MemStorage` answers a snapshot whose index is raised to
    /// `request_index` but whose term is not), with what the builder fails with, and with
    /// `StorageError::Other` when rocklog cannot read the term.
    fn snapshot(&self, request_index: u64, to: u64) -> raft::Result<Snapshot> {
        let state = self.log_state()?;
        let commit = self.saved_hard_state()?.commit;
        let index = commit.max(first_of(&state).saturating_sub(1)).min(last_of(&state));
        if index < request_index {
            return Err(raft::Error::Store(StorageError::SnapshotTemporarilyUnavailable));
        }
        let mut meta = SnapshotMetadata { index, term: self.term(index)?, ..Default::default() };
        meta.set_conf_state(self.meta.get_conf_state().clone());
        if let Some(builder) = &self.snapshot_builder {
            builder(meta, request_index, to)
        } else {
            let mut snapshot = Snapshot::default();
            snapshot.set_metadata(meta);
            Ok(snapshot)
        }
    }
}
