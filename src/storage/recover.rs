//! Recovery at open: every group's state from its `meta` records plus two seeks in `log`.

use rocksdb::DB;

use super::codec::{self, MetaTag};
use super::{Groups, log_cf, meta_cf};
use crate::error::{Error, Result};
use crate::records::LogId;

/// Rebuilds every group's state from the `meta` records plus two seeks per group in
/// `log` (first and last entry): O(groups), whatever the number of entries.
pub(crate) fn recover(db: &DB) -> Result<Groups> {
    let mut groups = Groups::new();
    let meta = meta_cf(db)?;
    let mut it = db.raw_iterator_cf(meta);
    it.seek_to_first();
    while let Some((key, value)) = it.item() {
        if let Some((group, tag)) = codec::parse_meta_key(key) {
            let state = groups.entry(group).or_default();
            match tag {
                Some(MetaTag::Group | MetaTag::Metadata) => {}
                Some(MetaTag::HardState) => state.hard_state = Some(codec::decode_hard_state(group, value)?),
                Some(MetaTag::Purged) => state.log.purged = Some(codec::decode_log_id(group, value)?),
                None => return Err(Error::corruption(group, "metadata", format!("unknown tag {}", key[8]))),
            }
        }
        it.next();
    }
    it.status()?;

    let log = log_cf(db)?;
    let mut it = db.raw_iterator_cf(log);
    for (&group, state) in &mut groups {
        let purged = state.log.purged;
        it.seek(codec::log_key(group, purged.map_or(0, |p| p.index.saturating_add(1))));
        let first = match it.key().and_then(codec::parse_log_key) {
            Some((g, index)) if g == group => Some(index),
            _ => None,
        };
        it.status()?;
        state.log.first_index = first;
        state.log.last_log_id = purged;
        if first.is_some() {
            it.seek_for_prev(codec::log_key(group, u64::MAX));
            if let (Some((g, index)), Some(value)) = (it.key().and_then(codec::parse_log_key), it.value())
                && g == group
            {
                state.log.last_log_id = Some(LogId::new(codec::decode_term(group, index, value)?, index));
            }
            it.status()?;
        }
    }
    tracing::debug!(groups = groups.len(), "recovered group states");
    Ok(groups)
}
