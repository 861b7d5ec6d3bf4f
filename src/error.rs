//! The one error type of rocklog.
//!
//! Errors fall into three families, and callers usually care which:
//! - **bad input** ([`Error::Gap`], [`Error::NonContiguous`], [`Error::BelowPurgeBoundary`],
//!   [`Error::BelowFirstIndex`], [`Error::EntryTooLarge`], [`Error::TermMismatch`],
//!   [`Error::TermRegression`], [`Error::GroupNotFound`], [`Error::Compacted`],
//!   [`Error::InvalidConfig`], and for checkpoints [`Error::DestinationExists`] and
//!   [`Error::NoSpace`]): the command
//!   was refused before anything was written; the engine is unchanged and still usable;
//! - **engine state** ([`Error::WriteFailed`], [`Error::Poisoned`], [`Error::Closed`]): the engine cannot accept
//!   writes any more; reopen it;
//! - **storage** ([`Error::Io`], [`Error::Storage`], [`Error::Corruption`],
//!   [`Error::NotRocklog`], [`Error::UnsupportedVersion`], [`Error::Locked`]): the disk
//!   or the directory is not what it should be.

use std::path::PathBuf;

/// A `Result` with rocklog's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in rocklog.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An append did not start right after the last entry (nor inside the log, which
    /// would overwrite a suffix): appending it would leave a hole.
    #[error("group {group}: append at index {index} leaves a gap (next index is {expected})")]
    Gap {
        /// The group appended to.
        group: u64,
        /// The first index of the refused append.
        index: u64,
        /// The index the append had to start at (or below, to overwrite a suffix).
        expected: u64,
    },

    /// The entries of one append call do not have consecutive indexes.
    #[error("group {group}: entries of one append are not contiguous: {index} follows {previous}")]
    NonContiguous {
        /// The group appended to.
        group: u64,
        /// The index of the entry before the break.
        previous: u64,
        /// The index that should have been `previous + 1`.
        index: u64,
    },

    /// The command touches an index at or below the group's purge boundary, which is
    /// gone for good.
    #[error("group {group}: index {index} is at or below the purge boundary {boundary}")]
    BelowPurgeBoundary {
        /// The group of the command.
        group: u64,
        /// The offending index.
        index: u64,
        /// The index of the last purged entry.
        boundary: u64,
    },

    /// An append started below the first entry of a log that was never purged: index 0
    /// on a log numbered from 1. Overwriting from there would replace the whole log under
    /// a numbering it does not use, so it is refused.
    #[error("group {group}: append at index {index} starts below the first index {first}")]
    BelowFirstIndex {
        /// The group appended to.
        group: u64,
        /// The first index of the refused append.
        index: u64,
        /// The index of the log's first entry.
        first: u64,
    },

    /// A read asked for an index that has been purged.
    #[error("group {group}: index {index} was purged (first index is {first})")]
    Compacted {
        /// The group read.
        group: u64,
        /// The first index asked for.
        index: u64,
        /// The first index still in the log.
        first: u64,
    },

    /// One entry is larger than `Config::max_entry_bytes`.
    #[error("group {group}: entry {index} has {size} bytes, the limit is {limit}")]
    EntryTooLarge {
        /// The group appended to.
        group: u64,
        /// The index of the entry.
        index: u64,
        /// The entry's payload size in bytes.
        size: u64,
        /// The configured limit.
        limit: u64,
    },

    /// A purge named a log id whose term differs from the term of the entry stored at
    /// that index: the caller's view of the log is not this log.
    #[error("group {group}: log id {index}@{expected} does not match the stored term {found}")]
    TermMismatch {
        /// The group of the command.
        group: u64,
        /// The index named.
        index: u64,
        /// The term the caller named.
        expected: u64,
        /// The term stored at that index.
        found: u64,
    },

    /// An append would make terms go backwards along the log, which Raft never does.
    #[error("group {group}: entry {index} has term {term}, below the term {previous} before it")]
    TermRegression {
        /// The group appended to.
        group: u64,
        /// The index of the entry whose term goes back.
        index: u64,
        /// Its term.
        term: u64,
        /// The term of the entry before it.
        previous: u64,
    },

    /// The group does not exist (it was never written, or it was removed).
    #[error("group {0} does not exist")]
    GroupNotFound(u64),

    /// A configuration value is out of range; the message names the field.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),

    /// An earlier write or fsync failed, so the engine refuses every further write until
    /// it is reopened. After a failed fsync the kernel may have dropped the dirty pages
    /// and a retry could report success for data that is gone ("fsyncgate"), so
    /// continuing is never safe.
    #[error("engine is poisoned by an earlier write failure ({0}); reopen it")]
    Poisoned(String),

    /// The write or fsync of the group commit holding this command failed (a full disk
    /// reads "No space left on device"). Whether the command is durable is unknown; the
    /// engine is now poisoned (see [`Error::Poisoned`]).
    #[error("write failed: {0}; the engine is now poisoned")]
    WriteFailed(String),

    /// The writer has stopped (shut down, all handles dropped, or it panicked), so the
    /// command cannot be carried out.
    #[error("engine is closed")]
    Closed,

    /// The directory exists but is not a rocklog directory; nothing was changed in it.
    #[error("{path} is not a rocklog directory: {reason}")]
    NotRocklog {
        /// The directory given.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// The directory was written by a newer rocklog with a format this one cannot read.
    #[error("unsupported format version {found} (this build reads up to {supported})")]
    UnsupportedVersion {
        /// The version found on disk.
        found: u32,
        /// The newest version this build supports.
        supported: u32,
    },

    /// Another live engine (in this or another process) holds the directory's lock.
    #[error("{path} is locked by another engine: {message}")]
    Locked {
        /// The directory given.
        path: PathBuf,
        /// RocksDB's message.
        message: String,
    },

    /// A stored record could not be decoded, or the log has a hole where an entry must be.
    #[error("corruption in group {group} at {what}: {reason}")]
    Corruption {
        /// The group the record belongs to.
        group: u64,
        /// The record: `index N` for an entry, or the name of a metadata record.
        what: String,
        /// What was wrong.
        reason: String,
    },

    /// An I/O error on the directory itself: creating or inspecting it, or opening one
    /// the engine may not write to (kind `ReadOnlyFilesystem` or `PermissionDenied`; a
    /// read-only directory can still be read with [`offline`](crate::offline)).
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },

    /// The destination of a checkpoint or backup exists and is not an empty directory;
    /// nothing was written.
    #[error("{path} already exists and is not an empty directory; a checkpoint needs a new or empty one")]
    DestinationExists {
        /// The destination given.
        path: PathBuf,
    },

    /// The filesystem that would hold a checkpoint or backup has less room than the copy
    /// needs; nothing was written.
    #[error("not enough space for {path}: it needs about {needed} bytes and {available} are free")]
    NoSpace {
        /// The destination given.
        path: PathBuf,
        /// Bytes the copy needs: the WAL alone when its files can be hard-linked, every
        /// SST, blob and WAL file when they must be copied.
        needed: u64,
        /// Bytes free on the destination's filesystem.
        available: u64,
    },

    /// RocksDB reported an error.
    #[error("storage error: {0}")]
    Storage(#[from] rocksdb::Error),
}

impl Error {
    /// True for errors that refused a bad command without touching the engine: retrying
    /// the same command fails the same way, but the engine is healthy.
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            Error::Gap { .. }
                | Error::NonContiguous { .. }
                | Error::BelowPurgeBoundary { .. }
                | Error::BelowFirstIndex { .. }
                | Error::Compacted { .. }
                | Error::EntryTooLarge { .. }
                | Error::TermMismatch { .. }
                | Error::TermRegression { .. }
                | Error::GroupNotFound(_)
                | Error::InvalidConfig(_)
                | Error::DestinationExists { .. }
                | Error::NoSpace { .. }
        )
    }

    pub(crate) fn corruption(group: u64, what: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        Error::Corruption { group, what: what.into(), reason: reason.to_string() }
    }
}
