//! Recovery at open: every group's state from its `meta` records plus two seeks in `log`.

use rocksdb::DB;

use super::codec::{self, MetaTag};
use super::{Groups, clean_close, log_cf, meta_cf};
use crate::error::{Error, Result};
use crate::records::LogId;

/// Threads reading the groups' bounds at open (raft-engine's default recovery threads).
const RECOVERY_THREADS: usize = 4;
/// Fewer groups than this per thread are read by fewer threads.
const MIN_GROUPS_PER_THREAD: usize = 64;

/// One group's bounds in `log`: its id, first index and last entry's log id.
type Bounds = (u64, Option<u64>, Option<LogId>);

/// The first index and last log id in `log` of each of `ids` (ascending), whose purged
/// log ids are `purged`: a seek to the first index after the purge boundary, and one back
/// from the end of the group.
fn log_bounds(db: &DB, ids: &[u64], purged: &[Option<LogId>]) -> Result<Vec<Bounds>> {
    let log = log_cf(db)?;
    let mut it = db.raw_iterator_cf(log);
    let mut out = Vec::with_capacity(ids.len());
    for (&group, purged) in ids.iter().zip(purged) {
        it.seek(codec::log_key(group, purged.map_or(0, |p| p.index.saturating_add(1))));
        let first = match it.key().and_then(codec::parse_log_key) {
            Some((g, index)) if g == group => Some(index),
            _ => None,
        };
        it.status()?;
        let mut last = None;
        if first.is_some() {
            it.seek_for_prev(codec::log_key(group, u64::MAX));
            if let (Some((g, index)), Some(value)) = (it.key().and_then(codec::parse_log_key), it.value())
                && g == group
            {
                last = Some(LogId::new(codec::decode_term(group, index, value)?, index));
            }
            it.status()?;
        }
        out.push((group, first, last));
    }
    Ok(out)
}

/// Rebuilds every group's state from the `meta` records plus two seeks per group in
/// `log` (first and last entry), read by up to [`RECOVERY_THREADS`] threads: O(groups),
/// whatever the number of entries.
/// Also returns how many groups' bounds were read by seeking: none when a clean close
/// recorded them and nothing was written since ([`clean_close`]).
pub(crate) fn recover(db: &DB) -> Result<(Groups, u64)> {
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

    if let Some(bounds) = clean_close::read(db)?
        && bounds.len() == groups.len()
        && groups.keys().all(|id| bounds.contains_key(id))
    {
        for (id, state) in &mut groups {
            if let Some((first, last)) = bounds.get(id) {
                state.log.first_index = *first;
                state.log.last_log_id = *last;
            }
        }
        tracing::debug!(groups = groups.len(), "recovered group states from the clean-close record");
        return Ok((groups, 0));
    }

    // Groups in key order, split among a few threads each with its own iterator: on a
    // cold cache every group costs a block read or two, and in key order one group's last
    // entry and the next group's first one share a block.
    let mut ids: Vec<u64> = groups.keys().copied().collect();
    ids.sort_unstable();
    let purged: Vec<Option<LogId>> = ids.iter().map(|id| groups.get(id).and_then(|s| s.log.purged)).collect();
    let threads = RECOVERY_THREADS.min(ids.len().div_ceil(MIN_GROUPS_PER_THREAD)).max(1);
    let chunk = ids.len().div_ceil(threads).max(1);
    let bounds: Vec<Result<Vec<Bounds>>> = std::thread::scope(|scope| {
        let workers: Vec<_> = ids
            .chunks(chunk)
            .zip(purged.chunks(chunk))
            .map(|(ids, purged)| scope.spawn(move || log_bounds(db, ids, purged)))
            .collect();
        workers
            .into_iter()
            // A panic in a reader is a bug: passed on as it is, not disguised as an error.
            .map(|w| w.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
            .collect()
    });
    for part in bounds {
        for (group, first, last) in part? {
            if let Some(state) = groups.get_mut(&group) {
                state.log.first_index = first;
                state.log.last_log_id = last.or(state.log.purged);
            }
        }
    }
    tracing::debug!(groups = groups.len(), "recovered group states");
    let seeked = u64::try_from(ids.len()).unwrap_or(u64::MAX);
    Ok((groups, seeked))
}
