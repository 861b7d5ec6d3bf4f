//! Counters of the engine's work, kept with plain atomics so they are readable without any
//! metrics recorder ([`LogStore::stats`](crate::LogStore::stats)). The list of counters is
//! written once, below: it defines both the public [`Stats`] snapshot and the atomics.

use std::sync::atomic::{AtomicU64, Ordering};

macro_rules! counters {
    ($($(#[doc = $doc:literal])* $name:ident,)*) => {
        /// Counters of the engine's work since it opened.
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        #[non_exhaustive]
        pub struct Stats {
            $($(#[doc = $doc])* pub $name: u64,)*
        }

        /// The live counters behind [`Stats`].
        #[derive(Debug, Default)]
        pub(crate) struct Counters {
            $(pub $name: AtomicU64,)*
        }

        impl Counters {
            /// A snapshot of every counter (each read on its own: not one instant).
            pub fn snapshot(&self) -> Stats {
                Stats { $($name: self.$name.load(Ordering::Relaxed),)* }
            }
        }
    };
}

counters! {
    /// Group commits written (each one `WriteBatch`).
    commits,
    /// WAL fsyncs (one per commit under `Sync`, one per effective flush under `Buffered`).
    syncs,
    /// Commands processed (writes, flushes), refused ones included.
    commands,
    /// Entries appended.
    appended_entries,
    /// Encoded entry bytes appended.
    appended_bytes,
    /// Commands refused as bad input.
    rejected,
    /// Groups whose bounds this open read by seeking in the log: every group after a
    /// crash, none after a clean close (its clean-close record held them).
    open_group_seeks,
    /// WAL files whose size the writer set to cover the space RocksDB reserved for them
    /// ([`Config::wal_presize`](crate::Config::wal_presize)): about one per memtable
    /// switch, none on a filesystem that reserves no space.
    wal_files_presized,
    /// Commits a blocking caller ran on its own thread while the writer was idle
    /// ([`Config::inline_commits`](crate::Config::inline_commits)); also counted in
    /// `commits` when they wrote.
    inline_commits,
    /// Obsolete WAL files the engine removed from RocksDB's `archive/` a chunk at a time
    /// ([`Config::wal_delete_chunk`](crate::Config::wal_delete_chunk)): about one per
    /// memtable flush, none with that setting off.
    wal_files_trimmed,
    /// Obsolete SST and blob files the engine removed from `trash/` a chunk at a time
    /// ([`Config::sst_delete_chunk`](crate::Config::sst_delete_chunk)), none with that
    /// setting off.
    sst_files_trimmed,
}

impl Counters {
    /// Adds `n` to one counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}
