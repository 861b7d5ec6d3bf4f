//! Entry points for fuzzers and property tests: every decoder of bytes rocklog reads back
//! from disk, reachable without a database. Not part of the API; it may change at any time.
//!
//! Each function runs the engine's own decoder (the one recovery, reads and `rocklog
//! check` use). None of them may panic, whatever the bytes: a damaged record must become
//! [`Error::Corruption`](crate::Error::Corruption), never a crash of the node reading it.

use crate::error::Result;
use crate::records::{Entry, HardState, LogId};
use crate::storage::codec;

/// Decodes an entry record as stored at (`group`, `index`) in the `log` column family,
/// checking that it names that index.
pub fn entry(group: u64, index: u64, bytes: &[u8]) -> Result<Entry> {
    codec::decode_entry(group, index, bytes)
}

/// Decodes only the term of an entry record, as recovery and term lookups do.
pub fn term(group: u64, index: u64, bytes: &[u8]) -> Result<u64> {
    codec::decode_term(group, index, bytes)
}

/// Decodes a hard-state record of the `meta` column family.
pub fn hard_state(group: u64, bytes: &[u8]) -> Result<HardState> {
    codec::decode_hard_state(group, bytes)
}

/// Decodes a purge-boundary record of the `meta` column family.
pub fn log_id(group: u64, bytes: &[u8]) -> Result<LogId> {
    codec::decode_log_id(group, bytes)
}

/// Decodes the format-version record.
pub fn format_version(bytes: &[u8]) -> Result<u32> {
    codec::decode_format_version(bytes)
}

/// Splits a `log` key into (group, index); `None` for a key of another shape.
pub fn log_key(key: &[u8]) -> Option<(u64, u64)> {
    codec::parse_log_key(key)
}

/// Splits a `meta` key into (group, tag byte when the tag is known); `None` for a key
/// that is not a group record.
pub fn meta_key(key: &[u8]) -> Option<(u64, Option<u8>)> {
    codec::parse_meta_key(key).map(|(group, tag)| (group, tag.map(|t| t as u8)))
}

/// Encodes an entry exactly as the engine stores it (to check that what decodes
/// re-encodes to the same record).
pub fn encode_entry(entry: &Entry) -> Vec<u8> {
    codec::encode_entry(entry)
}

/// Encodes a hard state exactly as the engine stores it.
pub fn encode_hard_state(hard_state: &HardState) -> Vec<u8> {
    codec::encode_hard_state(hard_state)
}

/// Encodes a purge boundary exactly as the engine stores it.
pub fn encode_log_id(id: &LogId) -> Vec<u8> {
    codec::encode_log_id(id)
}

/// Runs every decoder above on `bytes` (the group and index taken from its first 16
/// bytes, the way a damaged key would supply them) and checks that whatever decodes
/// re-encodes and decodes to the same value. Returns a description of a broken round trip;
/// panics never.
pub fn decode_everything(bytes: &[u8]) -> std::result::Result<(), String> {
    let word =
        |at: usize| bytes.get(at..at + 8).and_then(|b| b.try_into().ok()).map_or(0, u64::from_be_bytes);
    let (group, index) = (word(0), word(8));
    let _ = log_key(bytes);
    let _ = meta_key(bytes);
    let _ = format_version(bytes);
    let _ = term(group, index, bytes);
    if let Ok(e) = entry(group, index, bytes) {
        let again = entry(group, index, &encode_entry(&e)).map_err(|err| format!("{e:?}: {err}"))?;
        if again != e {
            return Err(format!("entry {e:?} re-decodes as {again:?}"));
        }
    }
    if let Ok(hs) = hard_state(group, bytes) {
        let again = hard_state(group, &encode_hard_state(&hs)).map_err(|err| format!("{hs:?}: {err}"))?;
        if again != hs {
            return Err(format!("hard state {hs:?} re-decodes as {again:?}"));
        }
    }
    if let Ok(id) = log_id(group, bytes) {
        let again = log_id(group, &encode_log_id(&id)).map_err(|err| format!("{id:?}: {err}"))?;
        if again != id {
            return Err(format!("log id {id:?} re-decodes as {again:?}"));
        }
    }
    Ok(())
}
