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
use serde::{Deserialize, Serialize};

/// What the adapter keeps in the group's metadata record (see
/// [`Group::save_metadata`](crate::Group::save_metadata)): everything openraft persists
/// besides the entries.
///
/// `purged` is openraft's last purged log id, leader id included. It is saved before the
/// entries are deleted, so it is the authority: rocklog's own purge boundary (term and
/// index only) may lag behind it after a crash, until [`super::LogStorage::open`] finishes
/// the purge, or sit above it where the adapter had to make room for a log that does not
/// start at 0 or 1.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound = "")]
pub(crate) struct Meta<NID: NodeId> {
    #[serde(default)]
    pub vote: Option<Vote<NID>>,
    #[serde(default)]
    pub committed: Option<LogId<NID>>,
    #[serde(default)]
    pub purged: Option<LogId<NID>>,
}

impl<NID: NodeId> Default for Meta<NID> {
    fn default() -> Self {
        Meta { vote: None, committed: None, purged: None }
    }
}

/// Encodes the metadata record.
pub(crate) fn encode_meta<NID: NodeId>(meta: &Meta<NID>) -> Result<Vec<u8>, StorageError<NID>> {
    rmp_serde::to_vec_named(meta).map_err(|e| io_error(ErrorSubject::Store, ErrorVerb::Write, &e))
}

/// Decodes the metadata record.
pub(crate) fn decode_meta<NID: NodeId>(bytes: &[u8]) -> Result<Meta<NID>, StorageError<NID>> {
    rmp_serde::from_slice(bytes).map_err(|e| io_error(ErrorSubject::Store, ErrorVerb::Read, &e))
}

/// The rocklog entry carrying `entry`: its index, its leader's term, and the whole
/// openraft entry (leader id included) as payload.
pub(crate) fn encode_entry<C: RaftTypeConfig>(
    entry: &C::Entry,
) -> Result<crate::Entry, StorageError<C::NodeId>> {
    let log_id = entry.get_log_id();
    let payload = rmp_serde::to_vec_named(entry)
        .map_err(|e| io_error(ErrorSubject::Log(log_id.clone()), ErrorVerb::Write, &e))?;
    Ok(crate::Entry::new(log_id.index, log_id.leader_id.term, payload))
}

/// The openraft entry stored in `entry`, checked against the index and term rocklog
/// filed it under.
pub(crate) fn decode_entry<C: RaftTypeConfig>(
    entry: &crate::Entry,
) -> Result<C::Entry, StorageError<C::NodeId>> {
    let subject = || ErrorSubject::LogIndex(entry.index);
    let decoded: C::Entry =
        rmp_serde::from_slice(&entry.payload).map_err(|e| io_error(subject(), ErrorVerb::Read, &e))?;
    let id = decoded.get_log_id();
    if id.index != entry.index || id.leader_id.term != entry.term {
        let reason = format!(
            "rocklog entry {}@{} holds openraft entry {id}: the log is not openraft's",
            entry.index, entry.term
        );
        return Err(StorageIOError::new(subject(), ErrorVerb::Read, AnyError::error(reason)).into());
    }
    Ok(decoded)
}

/// An openraft I/O error carrying `source` (its message and chain of causes).
pub(crate) fn io_error<NID: NodeId, E: std::error::Error + 'static>(
    subject: ErrorSubject<NID>,
    verb: ErrorVerb,
    source: &E,
) -> StorageError<NID> {
    StorageIOError::new(subject, verb, AnyError::new(source)).into()
}

/// An openraft I/O error for a rocklog error.
pub(crate) fn rocklog_error<NID: NodeId>(
    subject: ErrorSubject<NID>,
    verb: ErrorVerb,
    error: &crate::Error,
) -> StorageError<NID> {
    io_error(subject, verb, error)
}

/// An openraft I/O error for a request the adapter refuses itself.
pub(crate) fn refused<NID: NodeId>(
    subject: ErrorSubject<NID>,
    verb: ErrorVerb,
    reason: String,
) -> StorageError<NID> {
    StorageIOError::new(subject, verb, AnyError::error(reason)).into()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::io::Cursor;

    use ::openraft::{CommittedLeaderId, EntryPayload, Membership};

    use super::*;

    ::openraft::declare_raft_types!(Tc: D = Request, R = ());

    /// A user type that only a self-describing format decodes.
    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    #[serde(untagged)]
    enum Request {
        Set {
            key: String,
            #[serde(skip_serializing_if = "Option::is_none", default)]
            value: Option<String>,
        },
        Raw(Vec<u8>),
    }

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
        for entry in entries {
            let stored = encode_entry::<Tc>(&entry).unwrap();
            assert_eq!((stored.index, stored.term), (entry.log_id.index, entry.log_id.leader_id.term));
            let back = decode_entry::<Tc>(&stored).unwrap();
            assert_eq!(back.log_id, entry.log_id);
            assert_eq!(format!("{:?}", back.payload), format!("{:?}", entry.payload));
        }
    }

    #[test]
    fn an_entry_filed_under_another_index_or_term_is_refused() {
        let entry = ::openraft::Entry::<Tc> { log_id: log_id(2, 1, 5), payload: EntryPayload::Blank };
        let mut stored = encode_entry::<Tc>(&entry).unwrap();
        stored.index = 6;
        assert!(decode_entry::<Tc>(&stored).is_err());
        stored.index = 5;
        stored.term = 3;
        assert!(decode_entry::<Tc>(&stored).is_err());
        stored.term = 2;
        stored.payload = vec![0xC1].into();
        assert!(decode_entry::<Tc>(&stored).is_err(), "garbage is an error, not a panic");
    }

    #[test]
    fn metadata_round_trips_and_missing_fields_default() {
        let meta = Meta::<u64> {
            vote: Some(Vote::new_committed(5, 3)),
            committed: Some(log_id(5, 3, 40)),
            purged: Some(log_id(4, 2, 30)),
        };
        assert_eq!(decode_meta::<u64>(&encode_meta(&meta).unwrap()).unwrap(), meta);
        let empty: Vec<u8> =
            rmp_serde::to_vec_named(&std::collections::BTreeMap::<String, u8>::new()).unwrap();
        assert_eq!(decode_meta::<u64>(&empty).unwrap(), Meta::default());
        assert!(decode_meta::<u64>(&[0xC1]).is_err());
    }
}
