//! Staging one group commit: each command is validated against the state the earlier
//! commands of the same batch leave, then added to one `WriteBatch`.
//!
//! A refused command adds nothing to the batch and leaves the staged state as it was, so
//! it fails alone while the valid commands around it still commit.

use std::collections::HashMap;

use rocksdb::{ColumnFamily, DB, WriteBatch};

use crate::error::{Error, Result};
use crate::records::{HardState, LogId};
use crate::state::{GroupState, LogState};
use crate::storage::Groups;
use crate::storage::codec::{self, MetaTag};
use crate::writer::command::{EncodedEntry, Op};

/// The terms of the entries this batch appended to a group: always a suffix of the
/// staged log, so an index at or above `start` has its term here and one below it is
/// still what the database holds.
#[derive(Debug, Default)]
struct Pending {
    start: u64,
    terms: Vec<u64>,
}

impl Pending {
    fn term(&self, index: u64) -> Option<u64> {
        let offset = usize::try_from(index.checked_sub(self.start)?).ok()?;
        self.terms.get(offset).copied()
    }

    /// Forgets the entries at or above `from` (they were truncated or are overwritten).
    fn cut(&mut self, from: u64) {
        let keep = from.saturating_sub(self.start);
        self.terms.truncate(usize::try_from(keep).unwrap_or(usize::MAX));
    }

    /// Forgets the entries at or below `upto` (they were purged).
    fn purge(&mut self, upto: u64) {
        if upto >= self.start {
            // Checked: a purge may name index u64::MAX, where `upto + 1` does not exist.
            let count = usize::try_from(upto - self.start).map_or(usize::MAX, |n| n.saturating_add(1));
            self.terms.drain(..count.min(self.terms.len()));
            self.start = upto.saturating_add(1);
        }
    }
}

/// A group as this batch leaves it so far.
#[derive(Debug)]
struct Staged {
    /// `None` when the group does not exist (never created, or removed in this batch).
    state: Option<GroupState>,
    pending: Pending,
}

/// One group commit being built.
pub(crate) struct Staging<'a> {
    db: &'a DB,
    log: &'a ColumnFamily,
    meta: &'a ColumnFamily,
    committed: &'a Groups,
    staged: HashMap<u64, Staged>,
    max_entry_bytes: u64,
    /// The batch to write.
    pub batch: WriteBatch,
}

impl<'a> Staging<'a> {
    pub fn new(db: &'a DB, committed: &'a Groups, max_entry_bytes: u64) -> Result<Self> {
        Ok(Staging {
            db,
            log: crate::storage::log_cf(db)?,
            meta: crate::storage::meta_cf(db)?,
            committed,
            staged: HashMap::new(),
            max_entry_bytes,
            batch: WriteBatch::default(),
        })
    }

    /// The groups this batch changed and their new states (`None`: removed).
    pub fn into_changes(self) -> (WriteBatch, Vec<(u64, Option<GroupState>)>) {
        let changes = self.staged.into_iter().map(|(g, s)| (g, s.state)).collect();
        (self.batch, changes)
    }

    fn staged(&mut self, group: u64) -> &mut Staged {
        let committed = self.committed;
        self.staged
            .entry(group)
            .or_insert_with(|| Staged { state: committed.get(&group).copied(), pending: Pending::default() })
    }

    /// Validates `op` against the staged state of `group` and, if valid, adds it to the
    /// batch. On error nothing was added.
    pub fn stage(&mut self, group: u64, op: &Op) -> Result<()> {
        match op {
            Op::Create => {
                self.existing_or_create(group);
                Ok(())
            }
            Op::Append(entries) => self.append(group, entries),
            Op::Truncate(from) => self.truncate(group, *from),
            Op::Purge(upto) => self.purge(group, *upto),
            Op::SaveHardState(hs) => {
                self.save_hard_state(group, hs);
                Ok(())
            }
            Op::SaveMetadata(bytes) => {
                self.existing_or_create(group);
                self.batch.put_cf(self.meta, codec::meta_key(group, MetaTag::Metadata), bytes);
                Ok(())
            }
            Op::Reset => self.reset(group),
            Op::Remove => self.remove(group),
        }
    }

    /// The staged state of an existing group, or `GroupNotFound`.
    fn existing(&mut self, group: u64) -> Result<GroupState> {
        self.staged(group).state.ok_or(Error::GroupNotFound(group))
    }

    /// The staged state of `group`, creating the group (its marker record) if missing.
    fn existing_or_create(&mut self, group: u64) -> GroupState {
        let staged = self.staged(group);
        if let Some(state) = staged.state {
            state
        } else {
            staged.state = Some(GroupState::default());
            staged.pending = Pending::default();
            let meta = self.meta;
            self.batch.put_cf(meta, codec::meta_key(group, MetaTag::Group), []);
            GroupState::default()
        }
    }

    /// Sets the staged log and where its last term run starts (see
    /// [`GroupState::last_term_from`]), which every change of the log must restate.
    fn set_log(&mut self, group: u64, log: LogState, last_term_from: Option<u64>) {
        if let Some(state) = self.staged(group).state.as_mut() {
            state.log = log;
            state.last_term_from = last_term_from;
        }
    }

    /// The term at `index` as the batch leaves the log: the purge boundary's term at the
    /// boundary, `None` outside the log. Read from the database only below the last term
    /// run and below what this batch appended.
    fn term_at(&mut self, group: u64, index: u64) -> Result<Option<u64>> {
        let staged = self.staged(group);
        let state = staged.state.unwrap_or_default();
        let log = state.log;
        if !log.contains(index) {
            return Ok(log.purged.filter(|p| p.index == index).map(|p| p.term));
        }
        if let Some(term) = staged.pending.term(index).or_else(|| state.known_term(index)) {
            return Ok(Some(term));
        }
        let value = self.db.get_pinned_cf(self.log, codec::log_key(group, index))?;
        match value {
            Some(bytes) => codec::decode_term(group, index, &bytes).map(Some),
            None => Err(Error::corruption(group, format!("index {index}"), "entry missing inside the log")),
        }
    }

    fn append(&mut self, group: u64, entries: &[EncodedEntry]) -> Result<()> {
        let (Some(first), Some(last)) = (entries.first(), entries.last()) else {
            return Ok(());
        };
        for pair in entries.windows(2) {
            // Checked: after u64::MAX comes no index (wrapping would accept MAX, 0).
            if pair[0].index.checked_add(1) != Some(pair[1].index) {
                return Err(Error::NonContiguous { group, previous: pair[0].index, index: pair[1].index });
            }
            if pair[1].term < pair[0].term {
                return Err(Error::TermRegression {
                    group,
                    index: pair[1].index,
                    term: pair[1].term,
                    previous: pair[0].term,
                });
            }
        }
        if let Some(big) = entries.iter().find(|e| e.payload_len > self.max_entry_bytes) {
            return Err(Error::EntryTooLarge {
                group,
                index: big.index,
                size: big.payload_len,
                limit: self.max_entry_bytes,
            });
        }
        let start = first.index;
        let old = self.staged(group).state.unwrap_or_default();
        let log = old.log;
        if let Some(p) = log.purged.filter(|p| start <= p.index) {
            return Err(Error::BelowPurgeBoundary { group, index: start, boundary: p.index });
        }
        // Only a never-purged log numbered from 1 can meet this (index 0): a purged log's
        // first index is right after its boundary, which is refused above.
        if let Some(first) = log.first_index.filter(|&f| start < f) {
            return Err(Error::BelowFirstIndex { group, index: start, first });
        }
        let expected = log.next_index().unwrap_or(1);
        if start > expected {
            return Err(Error::Gap { group, index: start, expected });
        }
        let previous = start.checked_sub(1).map(|i| self.term_at(group, i)).transpose()?.flatten();
        if let Some(previous) = previous
            && first.term < previous
        {
            return Err(Error::TermRegression { group, index: start, term: first.term, previous });
        }

        self.existing_or_create(group);
        if log.contains(start) {
            self.batch.delete_range_cf(
                self.log,
                codec::log_key(group, start).to_vec(),
                codec::log_group_end(group).to_vec(),
            );
        }
        for e in entries {
            self.batch.put_cf(self.log, codec::log_key(group, e.index), &e.bytes);
        }
        let staged = self.staged(group);
        let terms = entries.iter().map(|e| e.term);
        match &mut staged.pending {
            p if !p.terms.is_empty()
                && p.start <= start
                && start <= p.start.saturating_add(p.terms.len() as u64) =>
            {
                p.cut(start);
                p.terms.extend(terms);
            }
            p => *p = Pending { start, terms: terms.collect() },
        }
        let first_index = match log.first_index {
            Some(f) if f < start => f,
            _ => start,
        };
        // Terms never fall along the log, so the entries with the last term are a suffix.
        let run_in_batch = entries.iter().find(|e| e.term == last.term).map_or(last.index, |e| e.index);
        let kept_before = start.checked_sub(1).filter(|&i| log.contains(i));
        let last_term_from = match kept_before {
            // The run reaches back past this append, into the entries it keeps.
            Some(before) if run_in_batch == start && previous == Some(last.term) => {
                Some(old.known_term(before).and(old.last_term_run_start()).unwrap_or(before))
            }
            _ => Some(run_in_batch),
        };
        self.set_log(
            group,
            LogState {
                first_index: Some(first_index),
                last_log_id: Some(LogId::new(last.term, last.index)),
                ..log
            },
            last_term_from,
        );
        Ok(())
    }

    fn truncate(&mut self, group: u64, from: u64) -> Result<()> {
        let old = self.existing(group)?;
        let log = old.log;
        if let Some(p) = log.purged.filter(|p| from <= p.index) {
            return Err(Error::BelowPurgeBoundary { group, index: from, boundary: p.index });
        }
        let (Some(first), Some(last)) = (log.first_index, log.last_log_id) else {
            return Ok(());
        };
        if from > last.index {
            return Ok(());
        }
        let (new, last_term_from) = if from <= first {
            (LogState { first_index: None, last_log_id: log.purged, ..log }, None)
        } else {
            let prev = from - 1;
            let term = self.term_at(group, prev)?.ok_or_else(|| {
                Error::corruption(group, format!("index {prev}"), "entry missing inside the log")
            })?;
            // Cut inside the last run: the rest of the run is still the last run.
            let run = old.last_term_run_start().filter(|&f| f <= prev);
            (LogState { last_log_id: Some(LogId::new(term, prev)), ..log }, run)
        };
        self.batch.delete_range_cf(
            self.log,
            codec::log_key(group, from).to_vec(),
            codec::log_group_end(group).to_vec(),
        );
        self.staged(group).pending.cut(from);
        self.set_log(group, new, last_term_from);
        Ok(())
    }

    fn purge(&mut self, group: u64, upto: LogId) -> Result<()> {
        let old = self.staged(group).state.unwrap_or_default();
        let log = old.log;
        if let Some(p) = log.purged {
            if upto.index < p.index {
                return Err(Error::BelowPurgeBoundary { group, index: upto.index, boundary: p.index });
            }
            if upto.index == p.index {
                return if upto.term == p.term {
                    Ok(())
                } else {
                    Err(Error::TermMismatch { group, index: upto.index, expected: upto.term, found: p.term })
                };
            }
        }
        if log.contains(upto.index)
            && let Some(found) = self.term_at(group, upto.index)?
            && found != upto.term
        {
            return Err(Error::TermMismatch { group, index: upto.index, expected: upto.term, found });
        }
        self.existing_or_create(group);
        let (new, last_term_from) = match (log.first_index, log.last_log_id) {
            (Some(first), Some(last)) if upto.index < last.index => {
                let first_index = first.max(upto.index + 1);
                let run = old.last_term_run_start().map(|f| f.max(first_index));
                (
                    LogState { first_index: Some(first_index), last_log_id: Some(last), purged: Some(upto) },
                    run,
                )
            }
            _ => (LogState { first_index: None, last_log_id: Some(upto), purged: Some(upto) }, None),
        };
        self.batch.delete_range_cf(
            self.log,
            codec::log_key(group, 0).to_vec(),
            codec::log_bound(group, upto.index.checked_add(1)),
        );
        self.batch.put_cf(self.meta, codec::meta_key(group, MetaTag::Purged), codec::encode_log_id(&upto));
        self.staged(group).pending.purge(upto.index);
        self.set_log(group, new, last_term_from);
        Ok(())
    }

    fn save_hard_state(&mut self, group: u64, hs: &HardState) {
        self.existing_or_create(group);
        self.batch.put_cf(
            self.meta,
            codec::meta_key(group, MetaTag::HardState),
            codec::encode_hard_state(hs),
        );
        if let Some(state) = self.staged(group).state.as_mut() {
            state.hard_state = Some(*hs);
        }
    }

    fn delete_log(&mut self, group: u64) {
        self.batch.delete_range_cf(
            self.log,
            codec::log_key(group, 0).to_vec(),
            codec::log_group_end(group).to_vec(),
        );
        self.batch.delete_cf(self.meta, codec::meta_key(group, MetaTag::Purged));
        self.staged(group).pending = Pending::default();
    }

    fn reset(&mut self, group: u64) -> Result<()> {
        self.existing(group)?;
        self.delete_log(group);
        self.set_log(group, LogState::default(), None);
        Ok(())
    }

    fn remove(&mut self, group: u64) -> Result<()> {
        self.existing(group)?;
        self.delete_log(group);
        self.batch.delete_cf(self.meta, codec::meta_key(group, MetaTag::HardState));
        self.batch.delete_cf(self.meta, codec::meta_key(group, MetaTag::Metadata));
        self.batch.delete_cf(self.meta, codec::meta_key(group, MetaTag::Group));
        self.staged(group).state = None;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::Pending;

    #[test]
    fn pending_is_a_suffix_that_cuts_and_purges() {
        let mut p = Pending { start: 10, terms: vec![1, 1, 2, 2] };
        assert_eq!(p.term(9), None);
        assert_eq!(p.term(12), Some(2));
        p.cut(12);
        assert_eq!(p.term(12), None);
        assert_eq!(p.term(11), Some(1));
        p.purge(10);
        assert_eq!((p.start, p.term(10), p.term(11)), (11, None, Some(1)));
        p.purge(50);
        assert!(p.terms.is_empty());
    }
}
