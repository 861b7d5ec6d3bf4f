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

/// A group's full in-memory state: its log shape and its hard state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct GroupState {
    pub log: LogState,
    pub hard_state: Option<HardState>,
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
