//! raft-rs's entries inside rocklog's, and rocklog's errors as raft-rs's.

use protobuf::Message as _;
use raft::StorageError;
use raft::eraftpb;

use crate::error::Error;
use crate::records::Entry;

/// The rocklog entry carrying `entry`: its index and term, and the whole entry encoded.
pub(super) fn encode_entry(entry: &eraftpb::Entry) -> raft::Result<Entry> {
    Ok(Entry::new(entry.index, entry.term, entry.write_to_bytes()?))
}

/// The raft-rs entry a rocklog entry of `group` carries; its own index and term must be
/// rocklog's.
pub(super) fn decode_entry(group: u64, stored: &Entry) -> raft::Result<eraftpb::Entry> {
    let entry = eraftpb::Entry::parse_from_carllerche_bytes(&stored.payload)?;
    if entry.index != stored.index || entry.term != stored.term {
        let reason = format!("payload holds entry {}@{}", entry.index, entry.term);
        return Err(store_error(Error::corruption(group, format!("index {}", stored.index), reason)));
    }
    Ok(entry)
}

/// rocklog's error as raft-rs's: `Compacted` as such, everything else inside `Other`.
pub(super) fn store_error(e: Error) -> raft::Error {
    match e {
        Error::Compacted { .. } => raft::Error::Store(StorageError::Compacted),
        e => raft::Error::Store(StorageError::Other(Box::new(e))),
    }
}
