//! How the adapter turns openraft's types into rocklog records and back, and rocklog's
//! errors into openraft's.
//!
//! Entries and the metadata record are MessagePack ([`rmp_serde`]) with structs written as
//! maps (field names included). MessagePack is self-describing, so user types whose
//! `Deserialize` needs `deserialize_any` (`#[serde(untagged)]`, `#[serde(flatten)]`,
//! internally tagged enums) round-trip; writing structs as maps rather than positional
//! arrays costs a few bytes per field name but keeps `#[serde(skip_serializing_if)]` and
//! added `#[serde(default)]` fields working, which a positional encoding (bincode, or
//! MessagePack arrays) silently breaks.

use ::openraft::{
    AnyError, ErrorSubject, ErrorVerb, LogId, NodeId, RaftLogId, RaftTypeConfig, StorageError,
    StorageIOError, Vote,
};

use crate::adapters::openraft_shared::{self as shared, Failure};

/// What the adapter keeps in the group's metadata record: openraft's vote, committed log
/// id and purged log id (see [`shared::Meta`]).
pub(crate) type Meta<NID> = shared::Meta<Vote<NID>, LogId<NID>>;

/// The rocklog entry carrying `entry`: its index, its leader's term, and the whole
/// openraft entry (leader id included) as payload.
pub(crate) fn encode_entry<C: RaftTypeConfig>(entry: &C::Entry) -> Result<crate::records::Entry, Failure> {
    let log_id = entry.get_log_id();
    shared::encode_entry(log_id.index, log_id.leader_id.term, entry)
}

/// The openraft entry stored in `entry`, checked against the index and term rocklog
/// filed it under.
pub(crate) fn decode_entry<C: RaftTypeConfig>(entry: &crate::records::Entry) -> Result<C::Entry, Failure> {
    shared::decode_entry(entry, |e: &C::Entry| (e.get_log_id().index, Some(e.get_log_id().leader_id.term)))
}

/// rocklog's purge boundary for openraft's purged log id: its term and index.
pub(crate) fn boundary<NID: NodeId>(log_id: Option<&LogId<NID>>) -> Option<crate::records::LogId> {
    log_id.map(|id| crate::records::LogId::new(id.leader_id.term, id.index))
}

/// An openraft I/O error carrying `failure` (its message and chain of causes).
pub(crate) fn storage_error<NID: NodeId>(
    subject: ErrorSubject<NID>,
    verb: ErrorVerb,
    failure: &Failure,
) -> StorageError<NID> {
    StorageIOError::new(subject, verb, AnyError::new(failure)).into()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::io::Cursor;

    use ::openraft::{CommittedLeaderId, EntryPayload, Membership};

    use super::*;
    use crate::adapters::openraft_shared::test_payload::{Request, assert_round_trips};

    ::openraft::declare_raft_types!(Tc: D = Request, R = ());

    fn log_id(term: u64, node: u64, index: u64) -> LogId<u64> {
        LogId::new(CommittedLeaderId::new(term, node), index)
    }

    #[test]
    fn entries_round_trip_with_their_leader_id_and_untagged_payloads() {
        let entries = [
            ::openraft::Entry::<Tc> {
                log_id: log_id(3, 7, 10),
                payload: EntryPayload::Normal(Request::Set { key: "k".into(), value: None }),
            },
            ::openraft::Entry::<Tc> {
                log_id: log_id(3, 7, 11),
                payload: EntryPayload::Normal(Request::Raw(vec![1, 2, 3])),
            },
            ::openraft::Entry::<Tc> { log_id: log_id(4, 2, 12), payload: EntryPayload::Blank },
            ::openraft::Entry::<Tc> {
                log_id: log_id(4, 2, 13),
                payload: EntryPayload::Membership(Membership::new(vec![[1, 2, 3].into()], None)),
            },
        ];
        let index_term = |e: &::openraft::Entry<Tc>| (e.log_id.index, e.log_id.leader_id.term);
        assert_round_trips(entries, index_term, encode_entry::<Tc>, decode_entry::<Tc>);
    }
}
