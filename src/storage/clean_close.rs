//! The clean-close record: every group's bounds in the log, written by a clean close so
//! the next open reads them from one record instead of seeking twice per group in the log
//! (on a cold cache, a block read per sorted run for each seek: seconds for a large log).
//!
//! The record carries the database's sequence number from just before it was written, and
//! is trusted only while it is the database's last write, i.e. while the sequence number is
//! that plus one. Any later write (the next run's first append, or a write the record never
//! saw) moves the sequence number on, and recovery goes back to seeking. The record needs
//! no fsync of its own: if a power loss takes it, or it survives without the writes before
//! it (impossible: the WAL is replayed as a prefix), the sequence numbers disagree.

use std::collections::HashMap;

use prost::Message;
use rocksdb::DB;

use super::codec::CLEAN_CLOSE_KEY;
use super::{Groups, meta_cf};
use crate::error::Result;
use crate::records::{CleanClose, GroupBounds, LogId};

/// Writes the record for `groups`, the published state of every group after the last
/// write. Call only once nothing else writes and every write is published.
pub(crate) fn write(db: &DB, groups: &Groups) -> Result<()> {
    let mut bounds: Vec<GroupBounds> = groups
        .iter()
        .map(|(&group, s)| GroupBounds {
            group,
            first_index: s.log.first_index,
            last_log_id: s.log.last_log_id,
        })
        .collect();
    bounds.sort_unstable_by_key(|b| b.group);
    let record = CleanClose { sequence: db.latest_sequence_number(), groups: bounds };
    db.put_cf(meta_cf(db)?, CLEAN_CLOSE_KEY, record.encode_to_vec())?;
    Ok(())
}

/// Each group's first index and last log id, as a clean close recorded them.
pub(crate) type Bounds = HashMap<u64, (Option<u64>, Option<LogId>)>;

/// Every group's bounds from the record, if there is one and it is still the database's
/// last write; `None` otherwise.
pub(crate) fn read(db: &DB) -> Result<Option<Bounds>> {
    let Some(bytes) = db.get_pinned_cf(meta_cf(db)?, CLEAN_CLOSE_KEY)? else {
        return Ok(None);
    };
    // A record that does not decode only costs the seeks it would have spared.
    let record = match CleanClose::decode(bytes.as_ref()) {
        Ok(record) => record,
        Err(e) => {
            tracing::warn!(error = %e, "the clean-close record does not decode; reading every group from the log");
            return Ok(None);
        }
    };
    if record.sequence.checked_add(1) != Some(db.latest_sequence_number()) {
        return Ok(None);
    }
    Ok(Some(record.groups.iter().map(|b| (b.group, (b.first_index, b.last_log_id))).collect()))
}
