//! Recovery at open: every group's state from its `meta` records plus two seeks in `log`.

use rocksdb::DB;

use super::clean_close::{self, Bounds};
use super::codec::{self, MetaTag};
use super::{Groups, log_cf, meta_cf};
use crate::error::{Error, Result};
use crate::records::LogId;

/// Threads reading the groups' bounds at open. The reads are cold block reads, one per
/// sorted run at each group boundary, so they wait on the disk, not the CPU: more of them
/// in flight is what helps. On 2 GiB in 1000 groups after a kill (W6, cold cache, 3
/// alternating runs each) the open took 2.9 s with 4 threads, 2.1 s with 16 and 2.1 s
/// with 48.
const RECOVERY_THREADS: usize = 16;
/// Fewer groups than this per thread are read by fewer threads.
const MIN_GROUPS_PER_THREAD: usize = 64;

/// The first index and last entry's log id in `log` of each listed group (ascending, with
/// its purged log id): a seek to the first index after the purge boundary, and one back
/// from the end of the group.
fn log_bounds(db: &DB, groups: &[(u64, Option<LogId>)]) -> Result<Bounds> {
    let log = log_cf(db)?;
    let mut it = db.raw_iterator_cf(log);
    let mut out = Bounds::with_capacity(groups.len());
    for &(group, purged) in groups {
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
        out.insert(group, (first, last));
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

    // From the clean-close record when it covers every group, else by seeking.
    let (bounds, seeked) = match clean_close::read(db)? {
        Some(bounds) if bounds.len() == groups.len() && groups.keys().all(|id| bounds.contains_key(id)) => {
            (bounds, 0)
        }
        _ => (seek_bounds(db, &groups)?, u64::try_from(groups.len()).unwrap_or(u64::MAX)),
    };
    for (id, state) in &mut groups {
        if let Some((first, last)) = bounds.get(id) {
            state.log.first_index = *first;
            state.log.last_log_id = last.or(state.log.purged);
        }
    }
    tracing::debug!(groups = groups.len(), seeked, "recovered group states");
    Ok((groups, seeked))
}

/// Every group's bounds read from the log: the groups in key order, split among a few
/// threads each with its own iterator. On a cold cache every group costs a block read or
/// two, and in key order one group's last entry and the next group's first share a block.
fn seek_bounds(db: &DB, groups: &Groups) -> Result<Bounds> {
    let mut purged: Vec<(u64, Option<LogId>)> = groups.iter().map(|(id, s)| (*id, s.log.purged)).collect();
    purged.sort_unstable_by_key(|(id, _)| *id);
    let threads = RECOVERY_THREADS.min(purged.len().div_ceil(MIN_GROUPS_PER_THREAD)).max(1);
    let chunk = purged.len().div_ceil(threads).max(1);
    let parts: Vec<Result<Bounds>> = std::thread::scope(|scope| {
        let workers: Vec<_> =
            purged.chunks(chunk).map(|part| scope.spawn(move || log_bounds(db, part))).collect();
        workers
            .into_iter()
            // A panic in a reader is a bug: passed on as it is, not disguised as an error.
            .map(|w| w.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
            .collect()
    });
    let mut bounds = Bounds::with_capacity(groups.len());
    for part in parts {
        bounds.extend(part?);
    }
    Ok(bounds)
}
