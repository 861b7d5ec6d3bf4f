//! The records rocklog stores, as prost messages.
//!
//! They are written with `#[derive(prost::Message)]`, so no `protoc` is needed to build
//! rocklog. For readers in other languages the equivalent schema is:
//!
//! ```proto
//! syntax = "proto3";
//! package rocklog.v1;
//!
//! message Entry     { uint64 index = 1; uint64 term = 2; bytes payload = 3; }
//! message LogId     { uint64 term = 1; uint64 index = 2; }
//! message HardState { uint64 term = 1; optional uint64 vote = 2; uint64 commit = 3; }
//! message FormatVersion { uint32 version = 1; }
//! ```
//!
//! Protobuf lets fields be added later without breaking old directories, which is why the
//! hard state and the entries use it rather than a fixed layout.

use bytes::Bytes;

/// One Raft log entry. The payload is opaque to rocklog; adapters put their library's
/// entry (command, membership change, blank) in it.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct Entry {
    /// The entry's position in its group's log.
    #[prost(uint64, tag = "1")]
    pub index: u64,
    /// The term of the leader that created the entry.
    #[prost(uint64, tag = "2")]
    pub term: u64,
    /// The application's bytes.
    #[prost(bytes = "bytes", tag = "3")]
    pub payload: Bytes,
}

impl Entry {
    /// An entry at `index` of `term` carrying `payload`.
    pub fn new(index: u64, term: u64, payload: impl Into<Bytes>) -> Self {
        Entry { index, term, payload: payload.into() }
    }

    /// The entry's log id (term and index).
    pub fn log_id(&self) -> LogId {
        LogId { term: self.term, index: self.index }
    }
}

/// The identity of a log position: an index and the term of the entry at that index.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Message)]
pub struct LogId {
    /// The term of the entry.
    #[prost(uint64, tag = "1")]
    pub term: u64,
    /// The index of the entry.
    #[prost(uint64, tag = "2")]
    pub index: u64,
}

impl LogId {
    /// The log id of index `index` in term `term`.
    pub const fn new(term: u64, index: u64) -> Self {
        LogId { term, index }
    }
}

impl std::fmt::Display for LogId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}", self.index, self.term)
    }
}

/// What a Raft node must remember across restarts besides its log: the current term,
/// whom it voted for in that term, and (for libraries that persist it) the commit index.
#[derive(Clone, Copy, PartialEq, Eq, Hash, prost::Message)]
pub struct HardState {
    /// The latest term this node has seen.
    #[prost(uint64, tag = "1")]
    pub term: u64,
    /// The node voted for in `term`, if any.
    #[prost(uint64, optional, tag = "2")]
    pub vote: Option<u64>,
    /// The highest index known to be committed (0 if the library does not persist it).
    #[prost(uint64, tag = "3")]
    pub commit: u64,
}

/// The on-disk format version, stored once per directory.
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub(crate) struct FormatVersion {
    #[prost(uint32, tag = "1")]
    pub version: u32,
}

/// What a clean close records about every group's log, so the next open need not seek
/// for it (see `storage::clean_close`).
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct CleanClose {
    /// The database's last sequence number before this record was written. The record
    /// describes the log only while it is the last write: while the database's sequence
    /// number is this plus one.
    #[prost(uint64, tag = "1")]
    pub sequence: u64,
    /// Every group's bounds.
    #[prost(message, repeated, tag = "2")]
    pub groups: Vec<GroupBounds>,
}

/// One group's bounds in a [`CleanClose`] record.
#[derive(Clone, Copy, PartialEq, prost::Message)]
pub(crate) struct GroupBounds {
    #[prost(uint64, tag = "1")]
    pub group: u64,
    /// The first index in the log, if it holds entries.
    #[prost(uint64, optional, tag = "2")]
    pub first_index: Option<u64>,
    /// The last entry's log id, or the purged one for an empty log.
    #[prost(message, optional, tag = "3")]
    pub last_log_id: Option<LogId>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn hard_state_distinguishes_no_vote_from_vote_for_node_zero() {
        let none = HardState { term: 3, vote: None, commit: 1 };
        let zero = HardState { term: 3, vote: Some(0), commit: 1 };
        let none2 = HardState::decode(none.encode_to_vec().as_slice()).ok();
        let zero2 = HardState::decode(zero.encode_to_vec().as_slice()).ok();
        assert_eq!(none2, Some(none));
        assert_eq!(zero2, Some(zero));
    }

    #[test]
    fn log_id_orders_by_term_then_index() {
        assert!(LogId::new(1, 9) < LogId::new(2, 1));
        assert!(LogId::new(2, 1) < LogId::new(2, 2));
        assert_eq!(LogId::new(4, 7).to_string(), "7@4");
    }
}
