//! What [`OfflineLog::check`](super::OfflineLog::check) reports.

use std::fmt;

/// The outcome of [`OfflineLog::check`](super::OfflineLog::check).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CheckReport {
    /// Every inconsistency found, `meta` first, then `log` in key order.
    pub findings: Vec<Finding>,
    /// Records read from `log`.
    pub entries: u64,
    /// Records read from `meta` (the format-version record included).
    pub meta_records: u64,
    /// Distinct groups seen in either column family.
    pub groups: u64,
}

impl CheckReport {
    /// True when nothing was found.
    pub fn is_clean(&self) -> bool {
        self.findings.is_empty()
    }
}

/// One inconsistency [`OfflineLog::check`](super::OfflineLog::check) found. Serialized (for `--json`) with a `kind`
/// field naming the variant in snake case beside the variant's fields.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Finding {
    /// Indexes `from..=to` are missing: between two entries, between the purge boundary
    /// and the first entry, or (with no purge boundary) between index 1 and the first.
    Hole {
        /// The group.
        group: u64,
        /// The first missing index.
        from: u64,
        /// The last missing index.
        to: u64,
    },
    /// An entry record does not decode.
    UndecodableEntry {
        /// The group.
        group: u64,
        /// The index in the record's key.
        index: u64,
        /// The decoder's message.
        reason: String,
    },
    /// An entry decodes but names another index than its key.
    IndexMismatch {
        /// The group.
        group: u64,
        /// The index in the record's key.
        index: u64,
        /// The index inside the record.
        stored_index: u64,
    },
    /// Entries remain at or below the group's purge boundary, which the engine never
    /// leaves (purges delete them in the same batch).
    BelowPurgeBoundary {
        /// The group.
        group: u64,
        /// The lowest such index.
        first: u64,
        /// The highest such index.
        last: u64,
        /// How many such entries there are.
        count: u64,
        /// The purge boundary's index.
        boundary: u64,
    },
    /// An entry's term is lower than the term before it (the previous decodable entry,
    /// or the purge boundary's): Raft terms never go backwards along a log.
    TermRegression {
        /// The group.
        group: u64,
        /// The entry's index.
        index: u64,
        /// The entry's term.
        term: u64,
        /// The term before it.
        previous: u64,
    },
    /// Log records of a group that has no group marker in `meta`: the engine does not
    /// know them, or knows the group only from stray metadata.
    LogWithoutGroup {
        /// The group.
        group: u64,
        /// The lowest index.
        first: u64,
        /// The highest index.
        last: u64,
        /// How many records.
        count: u64,
    },
    /// Metadata records of a group without a group marker (the engine writes the marker
    /// whenever it creates a group and deletes it last).
    MetaWithoutMarker {
        /// The group.
        group: u64,
    },
    /// A metadata record does not decode; the engine refuses to open the directory.
    UndecodableMeta {
        /// The group.
        group: u64,
        /// Which record: `hard state` or `purge boundary`.
        record: String,
        /// The decoder's message.
        reason: String,
    },
    /// A group metadata record with a tag this build does not know; the engine refuses to
    /// open the directory.
    UnknownMetaTag {
        /// The group.
        group: u64,
        /// The tag byte.
        tag: u8,
    },
    /// A `meta` key that is neither a group record, the format version nor the clean-close
    /// record.
    UnknownMetaKey {
        /// The key, in hex.
        key: String,
    },
    /// A `log` key that is not group ‖ index (16 bytes).
    MalformedLogKey {
        /// The key, in hex.
        key: String,
    },
    /// RocksDB failed while scanning a column family (for instance a checksum mismatch in
    /// an SST file): the records after the failure were not checked.
    Unreadable {
        /// `log` or `meta`.
        column_family: String,
        /// RocksDB's message.
        reason: String,
    },
}

impl Finding {
    /// The group the finding is about, when it is about one.
    pub fn group(&self) -> Option<u64> {
        match self {
            Finding::Hole { group, .. }
            | Finding::UndecodableEntry { group, .. }
            | Finding::IndexMismatch { group, .. }
            | Finding::BelowPurgeBoundary { group, .. }
            | Finding::TermRegression { group, .. }
            | Finding::LogWithoutGroup { group, .. }
            | Finding::MetaWithoutMarker { group }
            | Finding::UndecodableMeta { group, .. }
            | Finding::UnknownMetaTag { group, .. } => Some(*group),
            Finding::UnknownMetaKey { .. } | Finding::MalformedLogKey { .. } | Finding::Unreadable { .. } => {
                None
            }
        }
    }
}

/// `a..=b` for a run, or `a` when it is one index.
fn span(first: u64, last: u64) -> String {
    if first == last { format!("{first}") } else { format!("{first}..={last}") }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Finding::Hole { group, from, to } if from == to => {
                write!(f, "group {group}: hole: index {from} is missing inside the log")
            }
            Finding::Hole { group, from, to } => {
                write!(f, "group {group}: hole: indexes {from}..={to} are missing inside the log")
            }
            Finding::UndecodableEntry { group, index, reason } => {
                write!(f, "group {group}: index {index}: entry does not decode: {reason}")
            }
            Finding::IndexMismatch { group, index, stored_index } => {
                write!(f, "group {group}: index {index}: the record claims index {stored_index}")
            }
            Finding::BelowPurgeBoundary { group, first, last, count, boundary } => write!(
                f,
                "group {group}: {count} entries (index {}) remain at or below the purge boundary {boundary}",
                span(*first, *last)
            ),
            Finding::TermRegression { group, index, term, previous } => {
                write!(f, "group {group}: index {index}: term {term} is below the term {previous} before it")
            }
            Finding::LogWithoutGroup { group, first, last, count } => write!(
                f,
                "group {group}: {count} log records (index {}) but no group marker in meta",
                span(*first, *last)
            ),
            Finding::MetaWithoutMarker { group } => {
                write!(f, "group {group}: metadata records but no group marker")
            }
            Finding::UndecodableMeta { group, record, reason } => {
                write!(f, "group {group}: the {record} record does not decode: {reason}")
            }
            Finding::UnknownMetaTag { group, tag } => {
                write!(f, "group {group}: metadata record with unknown tag {tag}")
            }
            Finding::UnknownMetaKey { key } => write!(f, "meta: unknown key {key}"),
            Finding::MalformedLogKey { key } => write!(f, "log: malformed key {key} (not group ‖ index)"),
            Finding::Unreadable { column_family, reason } => {
                write!(f, "{column_family}: scan stopped by a storage error: {reason}")
            }
        }
    }
}
