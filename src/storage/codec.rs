//! Keys and values on disk.
//!
//! Column family `log`: key = group id (u64 big-endian) ‖ index (u64 big-endian), value =
//! an encoded [`Entry`]. Big-endian keys make RocksDB's byte order the numeric order, so a
//! group's log is one contiguous key range and `delete_range` can drop any part of it.
//!
//! Column family `meta`: key = group id ‖ one tag byte, value = a record chosen by the tag;
//! plus the format-version record under [`FORMAT_KEY`], whose length (14 bytes) can never
//! be a group key (9 bytes).

use prost::Message;

use crate::error::{Error, Result};
use crate::records::{Entry, FormatVersion, HardState, LogId};

/// The column family holding entries.
pub(crate) const LOG_CF: &str = "log";
/// The column family holding per-group metadata and the format version.
pub(crate) const META_CF: &str = "meta";
/// The key of the format-version record in `meta`.
pub(crate) const FORMAT_KEY: &[u8] = b"rocklog.format";
/// The key of the clean-close record in `meta` (see `storage::clean_close`). Like
/// [`FORMAT_KEY`], it is not a group's key, which older builds skip.
pub(crate) const CLEAN_CLOSE_KEY: &[u8] = b"rocklog.clean-close";
/// The format this build writes and the newest it reads.
///
/// - 1: entries, group markers, hard states, purge boundaries.
/// - 2: adds the per-group opaque metadata record. An engine opening a version-1
///   directory upgrades its version record (nothing else changes), so an older build
///   then refuses it with `UnsupportedVersion` instead of stumbling on a record it
///   does not know.
pub const FORMAT_VERSION: u32 = 2;

/// A log key: group ‖ index.
pub(crate) fn log_key(group: u64, index: u64) -> [u8; 16] {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&group.to_be_bytes());
    key[8..].copy_from_slice(&index.to_be_bytes());
    key
}

/// The smallest key above every log key of `group` (an exclusive upper bound). It is one
/// byte longer than a log key so that it also lies above index `u64::MAX`.
pub(crate) fn log_group_end(group: u64) -> [u8; 17] {
    let mut key = [0xFFu8; 17];
    key[..8].copy_from_slice(&group.to_be_bytes());
    key[16] = 0;
    key
}

/// The exclusive upper bound for indexes `< index` of `group`, or the group's end when
/// `index` is past `u64::MAX`.
pub(crate) fn log_bound(group: u64, index: Option<u64>) -> Vec<u8> {
    match index {
        Some(i) => log_key(group, i).to_vec(),
        None => log_group_end(group).to_vec(),
    }
}

/// A range of indexes as `[lo, hi)`: `lo` is `None` when the range starts past
/// `u64::MAX` (it is empty), `hi` is `None` when it is unbounded above.
pub(crate) fn index_bounds(range: &impl std::ops::RangeBounds<u64>) -> (Option<u64>, Option<u64>) {
    use std::ops::Bound;
    let lo = match range.start_bound() {
        Bound::Included(&i) => Some(i),
        Bound::Excluded(&i) => i.checked_add(1),
        Bound::Unbounded => Some(0),
    };
    let hi = match range.end_bound() {
        Bound::Included(&i) => i.checked_add(1),
        Bound::Excluded(&i) => Some(i),
        Bound::Unbounded => None,
    };
    (lo, hi)
}

/// Splits a log key into group and index.
pub(crate) fn parse_log_key(key: &[u8]) -> Option<(u64, u64)> {
    let group = u64::from_be_bytes(key.get(..8)?.try_into().ok()?);
    let index = u64::from_be_bytes(key.get(8..16)?.try_into().ok()?);
    (key.len() == 16).then_some((group, index))
}

/// The kinds of per-group metadata records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum MetaTag {
    /// Marks that the group exists (written when the group is created; empty value).
    Group = 1,
    /// The group's [`HardState`].
    HardState = 2,
    /// The [`LogId`] of the last purged entry.
    Purged = 3,
    /// An opaque byte string an adapter keeps beside the log (`Group::save_metadata`).
    Metadata = 4,
}

impl MetaTag {
    fn from_byte(b: u8) -> Option<Self> {
        match b {
            1 => Some(MetaTag::Group),
            2 => Some(MetaTag::HardState),
            3 => Some(MetaTag::Purged),
            4 => Some(MetaTag::Metadata),
            _ => None,
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            MetaTag::Group => "group marker",
            MetaTag::HardState => "hard state",
            MetaTag::Purged => "purge boundary",
            MetaTag::Metadata => "metadata",
        }
    }
}

/// A meta key: group ‖ tag.
pub(crate) fn meta_key(group: u64, tag: MetaTag) -> [u8; 9] {
    let mut key = [0u8; 9];
    key[..8].copy_from_slice(&group.to_be_bytes());
    key[8] = tag as u8;
    key
}

/// Splits a meta key into group and tag; `None` for keys that are not group records.
pub(crate) fn parse_meta_key(key: &[u8]) -> Option<(u64, Option<MetaTag>)> {
    if key.len() != 9 {
        return None;
    }
    let group = u64::from_be_bytes(key[..8].try_into().ok()?);
    Some((group, MetaTag::from_byte(key[8])))
}

/// Encodes an entry as stored in `log`.
pub(crate) fn encode_entry(entry: &Entry) -> Vec<u8> {
    entry.encode_to_vec()
}

/// Decodes the entry stored at (`group`, `index`), checking it names the same index.
pub(crate) fn decode_entry(group: u64, index: u64, bytes: &[u8]) -> Result<Entry> {
    let entry = Entry::decode(bytes).map_err(|e| Error::corruption(group, format!("index {index}"), e))?;
    if entry.index != index {
        return Err(Error::corruption(
            group,
            format!("index {index}"),
            format!("record claims index {}", entry.index),
        ));
    }
    Ok(entry)
}

/// Decodes only the term of the entry stored at (`group`, `index`).
pub(crate) fn decode_term(group: u64, index: u64, bytes: &[u8]) -> Result<u64> {
    decode_entry(group, index, bytes).map(|e| e.term)
}

pub(crate) fn encode_hard_state(hs: &HardState) -> Vec<u8> {
    hs.encode_to_vec()
}

pub(crate) fn decode_hard_state(group: u64, bytes: &[u8]) -> Result<HardState> {
    HardState::decode(bytes).map_err(|e| Error::corruption(group, MetaTag::HardState.name(), e))
}

pub(crate) fn encode_log_id(id: &LogId) -> Vec<u8> {
    id.encode_to_vec()
}

pub(crate) fn decode_log_id(group: u64, bytes: &[u8]) -> Result<LogId> {
    LogId::decode(bytes).map_err(|e| Error::corruption(group, MetaTag::Purged.name(), e))
}

pub(crate) fn encode_format_version() -> Vec<u8> {
    FormatVersion { version: FORMAT_VERSION }.encode_to_vec()
}

pub(crate) fn decode_format_version(bytes: &[u8]) -> Result<u32> {
    FormatVersion::decode(bytes).map(|v| v.version).map_err(|e| Error::corruption(0, "format version", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_keys_sort_by_group_then_index() {
        let mut keys = [log_key(2, 0), log_key(1, u64::MAX), log_key(1, 256), log_key(1, 1)];
        keys.sort_unstable();
        let parsed: Vec<_> = keys.iter().filter_map(|k| parse_log_key(k)).collect();
        assert_eq!(parsed, vec![(1, 1), (1, 256), (1, u64::MAX), (2, 0)]);
    }

    #[test]
    fn group_end_lies_between_groups() {
        let end = log_group_end(7);
        assert!(log_key(7, u64::MAX).as_slice() < end.as_slice());
        assert!(end.as_slice() < log_key(8, 0).as_slice());
    }

    #[test]
    fn entry_round_trips_and_index_is_checked() {
        let e = Entry::new(5, 2, &b"hello"[..]);
        let bytes = encode_entry(&e);
        assert_eq!(decode_entry(1, 5, &bytes).ok(), Some(e));
        assert!(matches!(decode_entry(1, 6, &bytes), Err(Error::Corruption { .. })));
    }

    #[test]
    fn garbage_is_a_corruption_error_not_a_panic() {
        for bytes in [&[0xFFu8; 3][..], &[0x0A, 0xFF, 0xFF][..], &[0x08][..]] {
            assert!(matches!(decode_entry(1, 1, bytes), Err(Error::Corruption { .. })));
            assert!(decode_hard_state(1, bytes).is_err());
        }
    }

    #[test]
    fn meta_keys_parse_and_format_key_is_not_a_group_key() {
        assert_eq!(parse_meta_key(&meta_key(9, MetaTag::Purged)), Some((9, Some(MetaTag::Purged))));
        assert_eq!(parse_meta_key(FORMAT_KEY), None);
    }
}
