//! How d-engine's entries, hard state and errors map onto rocklog's (see the module docs).

use std::io;

use bytes::Bytes;
use d_engine_core::{Error as DError, HardState as DHardState, StorageError, SystemError};
use d_engine_proto::common::Entry as DEntry;
use d_engine_proto::server::election::VotedFor;
use prost_d_engine::Message;

use crate::error::Error;
use crate::records::{Entry, HardState};

/// The protobuf field number of `Entry.payload` in d-engine's `common.proto`.
const PAYLOAD_FIELD: u32 = 3;
/// The bit of rocklog's `vote` that holds d-engine's `VotedFor.committed`.
const COMMITTED_BIT: u64 = 1 << 32;

/// The rocklog entry storing d-engine entry `entry`: same index and term, and as payload
/// the entry's protobuf encoding without index and term.
pub fn encode_entry(entry: &DEntry) -> Entry {
    let mut payload = Vec::new();
    if let Some(p) = &entry.payload {
        payload.reserve(p.encoded_len() + 6);
        prost_d_engine::encoding::message::encode(PAYLOAD_FIELD, p, &mut payload);
    }
    Entry { index: entry.index, term: entry.term, payload: Bytes::from(payload) }
}

/// The d-engine entry stored as rocklog entry `entry` of group `group`.
///
/// Fails with [`Error::Corruption`] when the payload does not decode as a d-engine
/// `Entry`, or carries an index or term other than the rocklog entry's.
pub fn decode_entry(group: u64, entry: &Entry) -> Result<DEntry, Error> {
    let corrupt =
        |reason: String| Error::Corruption { group, what: format!("index {}", entry.index), reason };
    let mut decoded =
        DEntry::decode(entry.payload.as_ref()).map_err(|e| corrupt(format!("not a d-engine entry: {e}")))?;
    if (decoded.index != 0 && decoded.index != entry.index)
        || (decoded.term != 0 && decoded.term != entry.term)
    {
        return Err(corrupt(format!(
            "the d-engine entry inside says {}@{}, rocklog says {}@{}",
            decoded.index, decoded.term, entry.index, entry.term
        )));
    }
    decoded.index = entry.index;
    decoded.term = entry.term;
    Ok(decoded)
}

/// The rocklog hard state encoding d-engine hard state `hs` exactly (see the module docs:
/// `vote` carries the voted-for id and the committed flag, `commit` the vote's term).
pub fn encode_hard_state(hs: &DHardState) -> HardState {
    match hs.voted_for {
        None => HardState { term: hs.current_term, vote: None, commit: 0 },
        Some(v) => HardState {
            term: hs.current_term,
            vote: Some(u64::from(v.voted_for_id) | if v.committed { COMMITTED_BIT } else { 0 }),
            commit: v.voted_for_term,
        },
    }
}

/// The d-engine hard state that [`encode_hard_state`] stored as `hs` in group `group`.
///
/// Fails with [`Error::Corruption`] when `hs` is not such an encoding: a vote with bits
/// above the committed flag, or a `commit` without a vote.
pub fn decode_hard_state(group: u64, hs: HardState) -> Result<DHardState, Error> {
    let corrupt = |reason: String| Error::Corruption { group, what: "hard state".into(), reason };
    let voted_for = match hs.vote {
        None if hs.commit != 0 => {
            return Err(corrupt(format!(
                "commit {} without a vote: not written by the d-engine adapter",
                hs.commit
            )));
        }
        None => None,
        Some(v) if v >> 33 != 0 => {
            return Err(corrupt(format!("vote {v:#x} has bits above the committed flag")));
        }
        Some(v) => Some(VotedFor {
            voted_for_id: (v & 0xffff_ffff) as u32,
            voted_for_term: hs.commit,
            committed: v & COMMITTED_BIT != 0,
        }),
    };
    Ok(DHardState { current_term: hs.term, voted_for })
}

/// The rocklog error a d-engine error returned by this adapter carries, if it carries one.
pub fn rocklog_error(error: &DError) -> Option<&Error> {
    match error {
        DError::System(SystemError::Storage(StorageError::IoError(io))) => {
            io.get_ref().and_then(|inner| inner.downcast_ref::<Error>())
        }
        _ => None,
    }
}

fn io_kind(error: &Error) -> io::ErrorKind {
    match error {
        e if e.is_bad_input() => io::ErrorKind::InvalidInput,
        Error::Corruption { .. } | Error::NotRocklog { .. } | Error::UnsupportedVersion { .. } => {
            io::ErrorKind::InvalidData
        }
        Error::Locked { .. } => io::ErrorKind::ResourceBusy,
        _ => io::ErrorKind::Other,
    }
}

/// A rocklog error as d-engine's storage error, keeping it as the source (see the module
/// docs).
impl From<Error> for DError {
    fn from(error: Error) -> Self {
        let storage = match error {
            Error::Io { path, source } => StorageError::PathError { path, source },
            other => StorageError::IoError(io::Error::new(io_kind(&other), other)),
        };
        DError::System(SystemError::Storage(storage))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use d_engine_proto::common::{EntryPayload, entry_payload::Payload};

    fn command(index: u64, term: u64, bytes: &'static [u8]) -> DEntry {
        DEntry {
            index,
            term,
            payload: Some(EntryPayload { payload: Some(Payload::Command(Bytes::from_static(bytes))) }),
        }
    }

    #[test]
    fn entries_round_trip_without_storing_index_and_term_twice() -> Result<(), Error> {
        for original in [
            command(7, 3, b"set x"),
            DEntry { index: 8, term: 3, payload: None },
            DEntry { index: 9, term: 3, payload: Some(EntryPayload { payload: None }) },
        ] {
            let stored = encode_entry(&original);
            assert_eq!((stored.index, stored.term), (original.index, original.term));
            assert_eq!(decode_entry(1, &stored)?, original);
        }
        // "No payload" and "an empty payload" stay distinct.
        assert!(encode_entry(&DEntry { index: 1, term: 1, payload: None }).payload.is_empty());
        let empty = EntryPayload { payload: None };
        assert!(!encode_entry(&DEntry { index: 1, term: 1, payload: Some(empty) }).payload.is_empty());
        Ok(())
    }

    #[test]
    fn a_full_d_engine_encoding_decodes_when_it_agrees_and_is_corruption_when_not() {
        let full = command(5, 2, b"x").encode_to_vec();
        let ok = Entry::new(5, 2, full.clone());
        assert_eq!(decode_entry(1, &ok).ok(), Some(command(5, 2, b"x")));
        let moved = Entry::new(6, 2, full);
        assert!(matches!(decode_entry(1, &moved), Err(Error::Corruption { group: 1, .. })));
        let garbage = Entry::new(5, 2, vec![0xff, 0xff, 0xff]);
        assert!(matches!(decode_entry(1, &garbage), Err(Error::Corruption { .. })));
    }

    #[test]
    fn hard_state_encoding_is_exact() -> Result<(), Error> {
        let cases = [
            DHardState { current_term: 0, voted_for: None },
            DHardState { current_term: 9, voted_for: None },
            DHardState {
                current_term: 9,
                voted_for: Some(VotedFor { voted_for_id: 0, voted_for_term: 0, committed: false }),
            },
            DHardState {
                current_term: 9,
                voted_for: Some(VotedFor { voted_for_id: 3, voted_for_term: 8, committed: false }),
            },
            DHardState {
                current_term: u64::MAX,
                voted_for: Some(VotedFor {
                    voted_for_id: u32::MAX,
                    voted_for_term: u64::MAX,
                    committed: true,
                }),
            },
        ];
        for hs in cases {
            let back = decode_hard_state(1, encode_hard_state(&hs))?;
            assert_eq!((back.current_term, back.voted_for), (hs.current_term, hs.voted_for));
        }
        let committed = encode_hard_state(&DHardState {
            current_term: 4,
            voted_for: Some(VotedFor { voted_for_id: 2, voted_for_term: 4, committed: true }),
        });
        assert_eq!(committed, HardState { term: 4, vote: Some((1 << 32) | 2), commit: 4 });
        Ok(())
    }

    #[test]
    fn foreign_hard_states_are_refused() {
        for hs in [
            HardState { term: 1, vote: Some(1 << 33), commit: 0 },
            HardState { term: 1, vote: None, commit: 5 },
        ] {
            assert!(matches!(decode_hard_state(1, hs), Err(Error::Corruption { .. })), "{hs:?}");
        }
    }

    #[test]
    fn errors_keep_the_rocklog_error_as_source() {
        let error = DError::from(Error::Gap { group: 1, index: 9, expected: 3 });
        assert!(matches!(rocklog_error(&error), Some(Error::Gap { index: 9, .. })));
        let DError::System(SystemError::Storage(StorageError::IoError(io))) = &error else {
            panic!("unexpected mapping: {error:?}");
        };
        assert_eq!(io.kind(), io::ErrorKind::InvalidInput);
        // d-engine's `Display` says "Storage operation failed"; the source chain says why.
        let chain: Vec<String> =
            std::iter::successors(Some(&error as &dyn std::error::Error), |e| e.source())
                .map(std::string::ToString::to_string)
                .collect();
        assert!(chain.iter().any(|m| m.contains("leaves a gap")), "{chain:?}");

        let closed = DError::from(Error::Closed);
        assert!(matches!(rocklog_error(&closed), Some(Error::Closed)));
        let corrupt = DError::from(Error::Corruption { group: 1, what: "x".into(), reason: "y".into() });
        assert!(matches!(&corrupt, DError::System(SystemError::Storage(StorageError::IoError(io)))
            if io.kind() == io::ErrorKind::InvalidData));

        let io_error = Error::Io { path: "/x".into(), source: io::Error::other("disk") };
        assert!(matches!(
            DError::from(io_error),
            DError::System(SystemError::Storage(StorageError::PathError { .. }))
        ));
    }
}
