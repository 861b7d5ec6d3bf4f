//! What the engine remembers about each group without reading its log.

use crate::records::{HardState, LogId};

/// The shape of one group's log: where it starts, where it ends, where it was purged.
///
/// A group's entries are exactly the indexes `first_index ..= last_log_id.index`, with no
/// hole. The log is empty when `first_index` is `None`; `last_log_id` is then the purge
/// boundary (or `None` for a group that never had an entry), which is what openraft calls
/// the last log id of an empty log.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct LogState {
    /// The index of the first entry present, or `None` when the log is empty.
    pub first_index: Option<u64>,
    /// The log id of the last entry, or of the last purged entry when the log is empty.
    pub last_log_id: Option<LogId>,
    /// The log id of the last purged entry (everything at or below it is gone).
    pub purged: Option<LogId>,
}

impl LogState {
    /// The index of the last entry, or of the last purged one when the log is empty.
    pub fn last_index(&self) -> Option<u64> {
        self.last_log_id.map(|id| id.index)
    }

    /// True when the group holds no entries.
    pub fn is_empty(&self) -> bool {
        self.first_index.is_none()
    }

    /// The index the next appended entry must have, when there is exactly one. A group
    /// that never had an entry nor a purge accepts index 0 or 1 (Raft libraries differ:
    /// openraft numbers from 0, raft-rs and etcd from 1) and answers `None` here.
    pub fn next_index(&self) -> Option<u64> {
        self.last_log_id.map(|id| id.index.saturating_add(1))
    }

    /// Number of entries present.
    pub fn len(&self) -> u64 {
        match (self.first_index, self.last_log_id) {
            (Some(first), Some(last)) => last.index - first + 1,
            _ => 0,
        }
    }

    /// True when `index` is an entry of the log.
    pub fn contains(&self, index: u64) -> bool {
        match (self.first_index, self.last_log_id) {
            (Some(first), Some(last)) => first <= index && index <= last.index,
            _ => false,
        }
    }

    /// The index of the last purged entry, if any was purged.
    pub fn purged_index(&self) -> Option<u64> {
        self.purged.map(|id| id.index)
    }
}

/// A group's full in-memory state: its log shape, its hard state, and how far back its
/// last term is known to reach.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct GroupState {
    pub log: LogState,
    pub hard_state: Option<HardState>,
    /// The first index of the log's last term run, as far as the engine saw it appended:
    /// every entry from here to the last one has the last entry's term. `None` when only
    /// the last entry's term is known (after an open, or a truncation below the run).
    ///
    /// Raft terms change rarely, so nearly every purge boundary, truncation point and
    /// append's previous entry falls inside this run, and the writer checks their terms
    /// without reading the log: a read there would wait on the disk once the entry has
    /// been flushed with direct I/O, and it would stall every append behind it.
    pub last_term_from: Option<u64>,
}

impl GroupState {
    /// The first index of the last term run, never below the first entry; `None` for an
    /// empty log.
    pub fn last_term_run_start(&self) -> Option<u64> {
        let (first, last) = (self.log.first_index?, self.log.last_log_id?);
        Some(self.last_term_from.unwrap_or(last.index).clamp(first, last.index))
    }

    /// The term at `index` when memory alone knows it: inside the last term run.
    pub fn known_term(&self, index: u64) -> Option<u64> {
        let last = self.log.last_log_id?;
        (self.last_term_run_start()? <= index && index <= last.index).then_some(last.term)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_purged_log_reports_the_boundary_as_last() {
        let s = LogState {
            first_index: None,
            last_log_id: Some(LogId::new(2, 9)),
            purged: Some(LogId::new(2, 9)),
        };
        assert!(s.is_empty());
        assert_eq!(s.len(), 0);
        assert_eq!(s.last_index(), Some(9));
        assert_eq!(s.next_index(), Some(10));
        assert!(!s.contains(9));
    }

    #[test]
    fn pristine_log_has_no_fixed_next_index() {
        let s = LogState::default();
        assert_eq!(s.next_index(), None);
        assert_eq!(s.len(), 0);
    }

    #[test]
    fn known_term_covers_the_last_run_only() {
        let log = LogState {
            first_index: Some(5),
            last_log_id: Some(LogId::new(3, 20)),
            purged: Some(LogId::new(1, 4)),
        };
        let state = GroupState { log, hard_state: None, last_term_from: Some(12) };
        assert_eq!(
            (state.known_term(11), state.known_term(12), state.known_term(20)),
            (None, Some(3), Some(3))
        );
        assert_eq!(state.known_term(21), None);
        // Unknown run: only the last entry.
        let state = GroupState { last_term_from: None, ..state };
        assert_eq!((state.known_term(19), state.known_term(20)), (None, Some(3)));
        // A run said to start below the first entry starts at the first entry.
        let state = GroupState { last_term_from: Some(1), ..state };
        assert_eq!(
            (state.last_term_run_start(), state.known_term(4), state.known_term(5)),
            (Some(5), None, Some(3))
        );
        // An empty log knows no term.
        let empty = GroupState { log: LogState { first_index: None, ..log }, ..state };
        assert_eq!((empty.last_term_run_start(), empty.known_term(20)), (None, None));
    }

    #[test]
    fn len_and_contains_follow_the_bounds() {
        let s = LogState {
            first_index: Some(3),
            last_log_id: Some(LogId::new(1, 7)),
            purged: Some(LogId::new(1, 2)),
        };
        assert_eq!(s.len(), 5);
        assert!(s.contains(3) && s.contains(7));
        assert!(!s.contains(2) && !s.contains(8));
    }
}
