//! The engine's settings: one [`Config`], loadable from TOML, every field defaulted.
//!
//! ```toml
//! path = "/var/lib/mynode/raft-log"
//! durability = "sync"          # or "buffered"
//! max_batch_entries = 4096
//! max_batch_bytes = "4MiB"
//! linger = "0s"
//! adaptive_batching = true
//! pipelined_sync = true
//! inline_commits = true        # false: every write goes through the writer thread
//! channel_capacity = 1024
//! max_entry_bytes = "16MiB"
//! write_buffer_size = "64MiB"
//! block_cache_size = "64MiB"
//! compression = "lz4"          # "none", "lz4" or "zstd"
//! wal_recycle_files = 2        # 0: RocksDB deletes obsolete WAL files
//! max_write_buffers = 2
//! blob_min_size = "1KiB"       # "0B": every entry stays in SST files
//! blob_compression = "none"    # blob files: "none", "lz4" or "zstd"
//! blob_gc_garbage_percent = 25 # 0: blob garbage collection always on, as RocksDB runs it
//! sst_bytes_per_sync = "1MiB"   # "0B": SST files are synced once, when complete
//! sst_direct_io = true         # false: flushes and compactions go through the page cache
//! sst_io_size = "256KiB"       # the largest single read or write of a flush or compaction
//! wal_presize = true           # false: the WAL's size grows with every write
//! wal_delete_chunk = "4MiB"    # with wal_recycle_files = 0; "0B": RocksDB removes each at once
//! sst_delete_chunk = "4MiB"    # obsolete SST and blob files; "0B": RocksDB removes each at once
//! l0_compaction_trigger = 8
//! level_base_size = "4GiB"
//! ```
//!
//! `docs/benchmarks.md` has the tuning guide: what each RocksDB setting trades, measured.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::units::ByteSize;

/// When a write is acknowledged.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// Acknowledge after the batch holding the write is in the WAL **and** fsynced. A
    /// crash of the process or the machine right after `Ok` loses nothing. What Raft needs.
    #[default]
    Sync,
    /// Acknowledge after the write reached the WAL file in the OS page cache: it survives
    /// a process crash but not a power failure or kernel crash until a later
    /// `flush()` (or a synced write) makes it durable. Cheaper; for tests and for
    /// deployments that accept losing the last moments of log on power loss.
    Buffered,
}

/// Compression of the log's SST files ([`Config::compression`]) or blob files
/// ([`Config::blob_compression`]). The WAL is never compressed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// No compression: the least CPU, the most disk.
    None,
    /// LZ4: cheap, modest savings. The default for SST files.
    #[default]
    Lz4,
    /// Zstandard: more CPU, better ratio; for large text-like payloads.
    Zstd,
}

/// All of rocklog's settings. Build one with [`Config::new`] and adjust fields, or load one
/// with [`Config::from_toml_file`]; the engine calls [`Config::validate`] when it opens.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
// Each flag is an independent TOML switch, not states of one thing.
#[allow(clippy::struct_excessive_bools)]
pub struct Config {
    /// The data directory. Created if missing; refused if it holds something that is not
    /// a rocklog directory. Default: `rocklog-data` (relative to the working directory).
    pub path: PathBuf,
    /// When writes are acknowledged. Default: [`Durability::Sync`].
    pub durability: Durability,
    /// The most entries one group commit carries. Larger batches amortise an fsync over
    /// more writes; smaller ones bound the latency of the batch's first waiter. A single
    /// append larger than this still commits, alone. Default: 4096.
    pub max_batch_entries: usize,
    /// The most payload bytes one group commit carries (same trade as above, in bytes).
    /// Default: 4MiB.
    pub max_batch_bytes: ByteSize,
    /// How long the writer waits for more commands after the first one of a batch.
    /// Zero (the default) means no waiting and no timer: a batch is whatever is queued
    /// when the previous commit finishes, which already gives group commit under load. A
    /// non-zero linger fills batches at low load at the price of that much latency.
    #[serde(with = "crate::units::duration")]
    pub linger: Duration,
    /// After a commit that answered N waiters, wait up to half that commit's duration
    /// (at most 1 ms) for N commands to queue again before starting the next batch. Under
    /// load the callers just answered come straight back; without the wait the writer
    /// starts the next fsync with only the fastest of them, and batches alternate between
    /// a few commands and all the rest. Never waits after a batch of one command, so a
    /// lone writer's latency is untouched. Default: true.
    pub adaptive_batching: bool,
    /// Under [`Durability::Sync`], a batch of two or more writes is written unsynced and
    /// fsynced by a second thread while the writer stages and writes the next batch, so
    /// the fsync overlaps the work of answering one batch and gathering the next (as
    /// [`Group::append_then`](crate::Group::append_then) batches always are). Every waiter
    /// still hears `Ok` only after the fsync holding its write; what changes is that the
    /// batch's entries are readable from the moment they are written, before that fsync,
    /// like any Raft leader's entries before they are durable. A batch of one write is
    /// synced inline, so a lone writer's latency is unchanged. Default: true.
    pub pipelined_sync: bool,
    /// A write commits on the caller's own thread when the writer is idle: nothing is
    /// queued, the last batch held at most one command and no fsync is under way. A lone
    /// caller then waits for no thread wake-up, only for its write and fsync; a busy
    /// engine still batches on the writer thread. This applies to blocking writes
    /// ([`BlockingGroup`](crate::BlockingGroup),
    /// [`LogStore::flush_blocking`](crate::LogStore::flush_blocking)), and to awaited
    /// async writes (not [`Group::append_then`](crate::Group::append_then)) made on a
    /// multi-threaded tokio runtime: those commit inside
    /// [`tokio::task::block_in_place`], so the worker's other tasks move to another thread
    /// for the fsync, but futures joined with the write *in the same task* (`join!`,
    /// `select!`), and a `LocalSet`'s other tasks, wait for it. On a current-thread
    /// runtime async writes always go through the writer. Off: every commit runs on the
    /// writer thread. Has no effect with a non-zero `linger`. Default: true.
    pub inline_commits: bool,
    /// Commands that may wait for the writer. When full, writers wait (backpressure)
    /// instead of queueing without bound. Default: 1024.
    pub channel_capacity: usize,
    /// The largest payload one entry may have; larger entries are refused with
    /// [`Error::EntryTooLarge`]. Default: 16MiB.
    pub max_entry_bytes: ByteSize,
    /// RocksDB's memtable size per column family. Range 64KiB..=16GiB. Default: 64MiB.
    ///
    /// Larger means fewer, bigger flushes and more memory (up to `max_write_buffers` of
    /// them). Entries purged before their memtable flushes are never written a second
    /// time, so a memtable several times what a node keeps between purges cuts write
    /// amplification; it also lengthens the WAL replay after a crash, which is capped at
    /// twice this size. Measured trade: the tuning guide in `docs/benchmarks.md`.
    pub write_buffer_size: ByteSize,
    /// RocksDB's block cache, shared by both column families; serves reads of entries
    /// that are no longer in the memtable. Default: 64MiB.
    pub block_cache_size: ByteSize,
    /// Compression of the log's SST files. Default: [`Compression::Lz4`].
    pub compression: Compression,
    /// WAL files RocksDB keeps for reuse (`recycle_log_file_num`) instead of deleting
    /// them once their memtables are flushed. A reused WAL's blocks are already written,
    /// so an fsync into it carries no block allocation or block-map update, and no file
    /// is deleted (on a filesystem mounted with online discard, deleting a 64 MiB WAL
    /// file holds the fsyncs issued meanwhile for 12-20 ms). Measured against `0` in
    /// alternating pairs (`docs/benchmarks.md`, tuning guide): 18 % more entries/s on
    /// 1000 groups (W3) and 40 % more with 64 KiB entries (W4), p99 1.34 against 2.39 ms.
    /// Safe under power loss because every flush covers both column families (RocksDB's
    /// `atomic_flush`, always on): RocksDB trims a reused WAL to its new records when it
    /// closes it without syncing the trim, so a power loss can bring the file's stale
    /// tail back, and point-in-time recovery stops there as at a corrupt tail. Before
    /// atomic flushes, a flush of `meta` alone could already have moved `meta` past that
    /// file, and RocksDB then refused to open ("Column family inconsistency"; once in
    /// about 1,100 power losses, `docs/reliability.md`). Takes effect once the first WAL
    /// files are obsolete, and keeps up to this many WAL files' worth of disk (each about
    /// one memtable). Range 0..=64. Default: 2.
    pub wal_recycle_files: usize,
    /// Memtables per column family, the one being written included
    /// (`max_write_buffer_number`). With 2, a write that fills the active memtable while
    /// the other is still being flushed stalls; more let writes go on through a slow
    /// flush, at up to this many times `write_buffer_size` of memory. Range 2..=32.
    /// Default: 2.
    pub max_write_buffers: usize,
    /// Entries whose stored record is at least this large go to RocksDB blob files at
    /// flush, leaving only a small index in the SST files: compaction then moves the
    /// index, not the payload, so large entries are written about twice (WAL, blob file)
    /// instead of once more per compaction. Blob files are compressed as
    /// `blob_compression` says (by default not at all). A blob file whose entries were all
    /// purged is deleted; one that purges left partly live is rewritten by blob garbage
    /// collection (see `blob_gc_garbage_percent`). Measured in alternating pairs
    /// (`docs/benchmarks.md`, tuning guide), 8KiB against `0B` with 64 KiB entries (W4),
    /// with WAL reuse on: 23 % more entries/s, p99 from 3.5 to 2.5 ms, CPU per entry down
    /// a fifth, compaction writing 0.44 instead of 0.81 bytes per payload byte; without
    /// it: 3 % more entries/s, p99 from 7.0 to 5.9 ms, CPU per entry down a tenth. 1KiB
    /// against 8KiB (2026-12-04, alternating pairs, rocklog alone) with 1 KiB entries:
    /// on 1000 groups (W3) 9 % more entries/s, p99 3.6 → 3.2 ms, compaction 0.56 → 0.01
    /// of the payload; with purges (W7) 16 % more, CPU per entry 9.7 → 8.5 µs; filling
    /// 2 GiB (W6) 60 % faster with writers stalled 3.7 instead of 8.8 s, and the reopen
    /// after a kill 0.4-0.6 s instead of 1.2-1.8 s (the SST files it seeks in hold only
    /// indexes). Entries smaller than this (many Raft entries) are unaffected. What it
    /// costs: reading an entry that has left the memtable takes one more read, of its
    /// blob file. With RocksDB's default random-access advice on blob files that made
    /// reading whole groups of flushed 1 KiB entries with the page cache dropped 1.5
    /// times as slow (2.5-2.8 s against 1.7 s for 50 groups of 1.3 MB); rocklog drops the
    /// advice, so the kernel reads ahead, and the same read took 1.2-1.4 s (once cached,
    /// 0.85-0.92 against 1.24 s). `0B` keeps every entry in SST files. Range 0B or
    /// 1KiB..=1GiB. Default: `1KiB` (`8KiB` before 2026-12-04).
    pub blob_min_size: ByteSize,
    /// Compression of blob files (`blob_min_size`), apart from `compression`, which
    /// covers SST files. Off by default, as TiKV configures RocksDB for Raft logs, with
    /// nothing compressed in the two levels where a log lives until its purge:
    /// - a blob file is written by the flush, the one stage each entry goes through on
    ///   the way from the memtable, and its compression is the flush's largest CPU cost
    ///   (a quarter of the flush thread's samples on 1000 groups of 1 KiB entries, W3);
    /// - RocksDB stores a compressed blob even when compressing made it larger, so an
    ///   incompressible payload (encrypted, or compressed by the application already)
    ///   pays the CPU twice, on the flush and on every read of it, for no disk saved.
    ///
    /// Against `"lz4"`, alternating pairs on incompressible entries (`docs/benchmarks.md`,
    /// tuning guide): on 1000 groups (W3) 2-17 % more entries/s and 6-15 % less CPU per
    /// entry; with 64 KiB entries (W4) 7-10 % more, p99 lower in every pair; with purges
    /// (W7) a tie with 4-9 % less CPU. Turn it on (`"lz4"`) for compressible entries kept
    /// long before their purge, on a disk short of space or bandwidth. Each blob file
    /// records its own compression, so changing this leaves files already written
    /// readable. Default: `"none"`.
    pub blob_compression: Compression,
    /// Blob garbage collection runs only while purges have left this much garbage: it
    /// turns on once purged entries make up at least this percent of the blob files'
    /// bytes, and off again below half of it. While on, compactions rewrite the live
    /// entries of the oldest quarter of blob files into new ones, and RocksDB schedules
    /// compactions for that purpose when at least this share of those files is garbage;
    /// a file left with no live entry is deleted. A Raft log purges its oldest entries
    /// first, so a file becomes garbage whole and is deleted without any rewrite; what
    /// needs collecting is a file kept alive by a few entries, of a group that purges
    /// late. RocksDB's own way, collection always on, rewrote live entries that would
    /// have been purged anyway: with 64 KiB entries and no purges (W4), alternating
    /// pairs, turning it off took throughput from 2,833 to 3,251 entries/s, p99 from
    /// 3.6 to 3.0 ms, CPU per entry from 294 to 246 µs and write amplification from 2.48
    /// to 2.02 (`docs/benchmarks.md`, tuning guide). What it costs: the blob files may
    /// hold up to about this percent of garbage on top of the live entries (25: a
    /// third more disk than the entries need) before it is reclaimed. `0` keeps
    /// collection always on. Checked once a second, off the write path; only used when
    /// `blob_min_size` is above `0B`. Range 0..=90. Default: 25.
    pub blob_gc_garbage_percent: u32,
    /// While flushes and compactions write an SST or blob file, RocksDB asks the kernel to
    /// start writing it back every this many bytes (`bytes_per_sync`, `sync_file_range`),
    /// instead of leaving the whole file dirty until its final fsync. A burst of
    /// megabytes of dirty pages written back at once queues in front of the WAL's fsyncs
    /// and shows as commit-latency spikes: measured on 1000 groups (W3), this setting
    /// lowered rocklog's p99 by about 40%. Durability does not change: every file is
    /// still fsynced before RocksDB records it. `0B` turns it off; otherwise
    /// 64KiB..=64MiB. Default: `1MiB` (RocksDB's tuning guide's value, and TiKV's).
    pub sst_bytes_per_sync: ByteSize,
    /// Flushes and compactions read and write SST and blob files with direct I/O
    /// (RocksDB's `use_direct_io_for_flush_and_compaction`), bypassing the page cache.
    /// Buffered, every flushed or compacted byte is first copied into the page cache (on
    /// this project's 2-core VM, a third of the process's CPU under load), and the dirty
    /// pages' writeback queues in front of the WAL's fsyncs. Measured in alternating pairs
    /// (`docs/benchmarks.md`): with 64 KiB entries (W4) throughput rose by a third, p99
    /// fell from 48 to 12 ms and CPU per entry from 940 to 550 µs; on 1000 groups (W3) p99
    /// fell from 16.7 to 9.5 ms. What it costs: flushed entries are no longer in the page
    /// cache, so the first read of one goes to the disk. The writer itself needs none:
    /// it checks the terms at purge and truncation boundaries from memory inside a group's
    /// last term run (see [`Group::purge`](crate::Group::purge)); with every group purged
    /// each second (W7) a purge round takes as long as with buffered I/O. Turn it off for
    /// a node whose readers often reach entries older than the memtables and that has
    /// memory for the page cache to keep them. The WAL is not affected, nor is durability:
    /// every SST file is still fsynced before RocksDB records it. Where the data
    /// directory's filesystem refuses direct I/O (tmpfs before Linux 6.6, for one; probed
    /// at open), the engine uses buffered I/O and logs a warning. Default: true.
    pub sst_direct_io: bool,
    /// The largest single request a flush or compaction sends to the disk: each SST
    /// writer buffers up to this much before it writes (RocksDB's
    /// `writable_file_max_buffer_size`, default 1 MiB), and a compaction reads its input
    /// files this much at a time (`compaction_readahead_size`, default 2 MiB). With direct
    /// I/O (`sst_direct_io`) each is one request, and a WAL fsync issued meanwhile waits
    /// behind it: on this project's VM a request of a few MiB took milliseconds, which
    /// showed in the commits' p99. Measured in alternating pairs (`docs/benchmarks.md`,
    /// tuning guide), with WAL reuse on, 256KiB writes against 1MiB: 64 KiB entries (W4)
    /// 13 % more entries/s and p99 from 6.7 to 4.7 ms; 1000 groups (W3) p99 down by
    /// 25-30 %, p50 up by 10-20 %. Then 256KiB compaction reads against 2MiB: W3 10 % more
    /// entries/s and p99 from 3.9 to 2.5 ms, p99.9 from 10.5 to 6.6 ms; W7 p99 down by a
    /// quarter. Without WAL reuse (the default), both at 256KiB against 1MiB: W3's p99
    /// 5.2 against 6.9 ms; W4 a wash (throughput 10 % lower, p99 the same). Smaller requests
    /// slow compactions down (64KiB writes made W3's p99.9 three times worse as they fell
    /// behind; 128KiB reads compacted less and lost the p99.9 gain). The WAL's writes are
    /// not split: a record larger than this is written in one piece. Range 64KiB..=16MiB,
    /// a multiple of 4KiB (direct I/O's alignment). Default: `256KiB`.
    pub sst_io_size: ByteSize,
    /// The writer sets each new WAL file's size to cover the space RocksDB reserved for
    /// it, so that the WAL's fsyncs write data only. RocksDB reserves WAL space with
    /// `fallocate(FALLOC_FL_KEEP_SIZE)`, which leaves the size growing with every write:
    /// every fsync then also writes the file's inode with its new size (a journal commit,
    /// or on an ext4 without a journal, as on this project's machine, one more
    /// synchronous write per fsync; measured: 335-350 µs at p50 for a small append and
    /// `fdatasync`, against 245-255 µs with the size already set). The bytes past
    /// RocksDB's last write read as zeros, which RocksDB's WAL recovery skips; RocksDB
    /// truncates a WAL to what it wrote when it closes it. Durability does not change (the power-loss loop runs with it).
    /// On a filesystem that reserves no space (or with recycled WAL files, already full
    /// size) it does nothing. Default: true.
    pub wal_presize: bool,
    /// Obsolete WAL files (one per flushed memtable) are removed this many bytes at a
    /// time, by a thread of the engine's, with a short pause between chunks, instead of
    /// by RocksDB in one `unlink`. On a filesystem mounted with online discard (ext4's
    /// `discard` option, common on cloud VMs), removing a 64 MiB file sends the disk one
    /// discard for all of it, and every WAL fsync issued meanwhile waits behind it: on
    /// this project's VM 12-20 ms, once per memtable. In chunks, no discard holds an fsync
    /// for long. RocksDB moves each obsolete WAL file into `archive/` in the data
    /// directory for the thread to remove; if the thread falls behind, RocksDB removes
    /// archived files itself once they are 20 seconds old. Recovery never reads
    /// `archive/`. `0B` lets RocksDB delete each file at once (files an earlier open
    /// archived are then removed at open). It applies only with `wal_recycle_files = 0`:
    /// by default RocksDB reuses obsolete WAL files instead of deleting them (and it
    /// cannot archive and recycle at once). Measured in alternating
    /// pairs (`docs/benchmarks.md`, tuning guide), 4MiB against `0B`: p99.9 from 16 to
    /// 3.7 ms on 1000 groups (W3) and from 15 to 3.3 ms with 64 KiB entries (W4), with
    /// 5-8 % more entries/s; with purges (W7) little gain, as RocksDB still deletes blob
    /// and SST files at once. On a filesystem without online discard it only moves the
    /// deletion to another thread. `0B`, or 64KiB..=1GiB. Default: `4MiB`.
    pub wal_delete_chunk: ByteSize,
    /// Obsolete SST and blob files (made so by compactions, blob garbage collection and
    /// purges) are removed this many bytes at a time, by the same thread as
    /// `wal_delete_chunk`'s, with a short pause between chunks, instead of by RocksDB in
    /// one `unlink`, for the same reason: on a filesystem mounted with online discard,
    /// removing a 64 MiB blob file holds every WAL fsync issued meanwhile. The thread
    /// hard-links each SST and blob file into `trash/` in the data directory as it
    /// appears, and removes a file from there once RocksDB has deleted its own name; a
    /// file a checkpoint also links is only unlinked, never shrunk. Nothing reads
    /// `trash/`. Measured in alternating pairs (`docs/benchmarks.md`, tuning guide) on
    /// 1000 groups purged each second (W7), 4MiB against `0B`: p99.9 3.3 ms against
    /// 11.1 ms (5 pairs of 5), throughput and p99 unchanged; on a filesystem without
    /// online discard it only moves the deletion to another thread. `0B` lets RocksDB
    /// delete each file at once (an earlier open's `trash/` is then removed at open).
    /// `0B`, or 64KiB..=1GiB. Default: `4MiB`.
    pub sst_delete_chunk: ByteSize,
    /// How many flushed files level 0 of the log column family gathers before they are
    /// compacted into the level below (`level0_file_num_compaction_trigger`). Each flush
    /// holds every group's newest entries, so every file overlaps everything below it
    /// and each compaction rewrites what is still live there. Waiting for more files
    /// means fewer, larger compactions, and entries purged meanwhile (a Raft node purges
    /// after each snapshot) are dropped without ever being rewritten. Measured in
    /// alternating pairs (`docs/benchmarks.md`), 8 against RocksDB's 4: on 1000 groups
    /// purged each second (W7) compaction wrote 0.22 instead of 0.59 bytes per payload
    /// byte; on 1000 groups never purged (W3), 0.62 instead of 0.94, and throughput rose
    /// 18%. What it costs: a range read of entries older than the memtables merges up to
    /// this many more files. Writes slow down at 20 files and stop at 36 whatever this
    /// is. Range 1..=16. Default: 8.
    pub l0_compaction_trigger: usize,
    /// The size level 0 may reach before it is compacted whatever its file count, and the
    /// target size of the first level below it (`max_bytes_for_level_base`). Purges'
    /// range deletions count, in RocksDB's sizing, the entries they delete further down:
    /// with RocksDB's 256 MiB, every flush carrying a round of purges made level 0 look
    /// oversized and was compacted at once, while its entries were still live (on W7,
    /// compaction wrote 0.95 bytes per payload byte, 0.49 with 4 GiB). Range
    /// 1MiB..=1TiB. Default: `4GiB`.
    pub level_base_size: ByteSize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            path: PathBuf::from("rocklog-data"),
            durability: Durability::Sync,
            max_batch_entries: 4096,
            max_batch_bytes: ByteSize::mib(4),
            linger: Duration::ZERO,
            adaptive_batching: true,
            pipelined_sync: true,
            inline_commits: true,
            channel_capacity: 1024,
            max_entry_bytes: ByteSize::mib(16),
            write_buffer_size: ByteSize::mib(64),
            block_cache_size: ByteSize::mib(64),
            compression: Compression::Lz4,
            wal_recycle_files: 2,
            max_write_buffers: 2,
            blob_min_size: ByteSize::kib(1),
            blob_compression: Compression::None,
            blob_gc_garbage_percent: 25,
            sst_bytes_per_sync: ByteSize::mib(1),
            sst_direct_io: true,
            sst_io_size: ByteSize::kib(256),
            wal_delete_chunk: ByteSize::mib(4),
            sst_delete_chunk: ByteSize::mib(4),
            wal_presize: true,
            l0_compaction_trigger: 8,
            level_base_size: ByteSize::gib(4),
        }
    }
}

impl Config {
    /// The default configuration for the directory `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Config { path: path.into(), ..Config::default() }
    }

    /// Parses a TOML document; missing fields take their defaults.
    ///
    /// Fails with [`Error::InvalidConfig`] on a syntax error, an unknown field, a value of
    /// the wrong type, or a value [`Config::validate`] refuses.
    pub fn from_toml_str(text: &str) -> Result<Self> {
        let config: Config = toml::from_str(text).map_err(|e| Error::InvalidConfig(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// Reads and parses a TOML file (see [`Config::from_toml_str`]).
    ///
    /// Fails with [`Error::Io`] when the file cannot be read, and as
    /// [`Config::from_toml_str`] does otherwise.
    pub fn from_toml_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text =
            std::fs::read_to_string(path).map_err(|source| Error::Io { path: path.to_owned(), source })?;
        Self::from_toml_str(&text)
            .map_err(|e| Error::InvalidConfig(format!("{}: {}", path.display(), e.inner_message())))
    }

    /// The configuration as a TOML document (every field, defaults included).
    pub fn to_toml_string(&self) -> String {
        // Serializing plain fields into TOML cannot fail; fall back to the Debug form
        // rather than panicking if a future field ever makes it.
        toml::to_string(self).unwrap_or_else(|e| format!("# cannot render config: {e}\n"))
    }

    /// Checks every field's range.
    ///
    /// Fails with [`Error::InvalidConfig`] naming the first field out of range and its
    /// allowed range.
    pub fn validate(&self) -> Result<()> {
        fn check(ok: bool, msg: impl FnOnce() -> String) -> Result<()> {
            if ok { Ok(()) } else { Err(Error::InvalidConfig(msg())) }
        }
        check(!self.path.as_os_str().is_empty(), || "path must not be empty".into())?;
        check((1..=1_000_000).contains(&self.max_batch_entries), || {
            format!("max_batch_entries = {} is outside 1..=1000000", self.max_batch_entries)
        })?;
        check((ByteSize::kib(1)..=ByteSize::gib(1)).contains(&self.max_batch_bytes), || {
            format!("max_batch_bytes = {} is outside 1KiB..=1GiB", self.max_batch_bytes)
        })?;
        check(self.linger <= Duration::from_secs(1), || {
            format!("linger = {:?} is above the 1s maximum", self.linger)
        })?;
        check((1..=1 << 20).contains(&self.channel_capacity), || {
            format!("channel_capacity = {} is outside 1..=1048576", self.channel_capacity)
        })?;
        check((ByteSize(1)..=ByteSize::gib(1)).contains(&self.max_entry_bytes), || {
            format!("max_entry_bytes = {} is outside 1B..=1GiB", self.max_entry_bytes)
        })?;
        check((ByteSize::kib(64)..=ByteSize::gib(16)).contains(&self.write_buffer_size), || {
            format!("write_buffer_size = {} is outside 64KiB..=16GiB", self.write_buffer_size)
        })?;
        check(self.block_cache_size <= ByteSize::gib(1024), || {
            format!("block_cache_size = {} is above 1TiB", self.block_cache_size)
        })?;
        check(self.wal_recycle_files <= 64, || {
            format!("wal_recycle_files = {} is outside 0..=64", self.wal_recycle_files)
        })?;
        check((2..=32).contains(&self.max_write_buffers), || {
            format!("max_write_buffers = {} is outside 2..=32", self.max_write_buffers)
        })?;
        check(
            self.blob_min_size == ByteSize(0)
                || (ByteSize::kib(1)..=ByteSize::gib(1)).contains(&self.blob_min_size),
            || format!("blob_min_size = {} is neither 0B nor within 1KiB..=1GiB", self.blob_min_size),
        )?;
        check(self.blob_gc_garbage_percent <= 90, || {
            format!("blob_gc_garbage_percent = {} is outside 0..=90", self.blob_gc_garbage_percent)
        })?;
        check(
            self.sst_bytes_per_sync == ByteSize(0)
                || (ByteSize::kib(64)..=ByteSize::mib(64)).contains(&self.sst_bytes_per_sync),
            || {
                format!(
                    "sst_bytes_per_sync = {} is neither 0B nor within 64KiB..=64MiB",
                    self.sst_bytes_per_sync
                )
            },
        )?;
        check(
            (ByteSize::kib(64)..=ByteSize::mib(16)).contains(&self.sst_io_size)
                && self.sst_io_size.bytes().is_multiple_of(4096),
            || format!("sst_io_size = {} is not a multiple of 4KiB within 64KiB..=16MiB", self.sst_io_size),
        )?;
        check(
            self.wal_delete_chunk == ByteSize(0)
                || (ByteSize::kib(64)..=ByteSize::gib(1)).contains(&self.wal_delete_chunk),
            || format!("wal_delete_chunk = {} is neither 0B nor within 64KiB..=1GiB", self.wal_delete_chunk),
        )?;
        check(
            self.sst_delete_chunk == ByteSize(0)
                || (ByteSize::kib(64)..=ByteSize::gib(1)).contains(&self.sst_delete_chunk),
            || format!("sst_delete_chunk = {} is neither 0B nor within 64KiB..=1GiB", self.sst_delete_chunk),
        )?;
        check((1..=16).contains(&self.l0_compaction_trigger), || {
            format!("l0_compaction_trigger = {} is outside 1..=16", self.l0_compaction_trigger)
        })?;
        check((ByteSize::mib(1)..=ByteSize::gib(1024)).contains(&self.level_base_size), || {
            format!("level_base_size = {} is outside 1MiB..=1TiB", self.level_base_size)
        })?;
        Ok(())
    }
}

impl Error {
    /// The message of an [`Error::InvalidConfig`] without its prefix (the whole message
    /// for other errors).
    fn inner_message(&self) -> String {
        match self {
            Error::InvalidConfig(m) => m.clone(),
            other => other.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_toml_gives_the_defaults() {
        assert_eq!(Config::from_toml_str("").ok(), Some(Config::default()));
    }

    /// The example in these module docs and the configuration table in
    /// `docs/operations.md` give every field with its default, so a changed default that
    /// leaves either behind fails here.
    #[test]
    fn the_documented_defaults_are_the_defaults() {
        let example = include_str!("config.rs")
            .lines()
            .filter_map(|line| line.strip_prefix("//!"))
            .map(|line| line.strip_prefix(' ').unwrap_or(line))
            .skip_while(|line| *line != "```toml")
            .skip(1)
            .take_while(|line| *line != "```")
            .collect::<Vec<_>>()
            .join("\n");
        let expected = Config::new("/var/lib/mynode/raft-log");
        assert_eq!(
            Config::from_toml_str(&example).ok(),
            Some(expected),
            "the module docs' example:\n{example}"
        );

        let operations = include_str!("../docs/operations.md");
        let defaults = toml::Table::try_from(Config::default()).unwrap_or_default();
        assert!(defaults.len() > 20, "{defaults:?}");
        for (field, value) in &defaults {
            assert!(
                example.lines().any(|line| line.starts_with(&format!("{field} = "))),
                "`{field}` is missing from the module docs' example"
            );
            if field != "path" {
                let row = format!("| `{field}` | `{value}` |");
                assert!(operations.contains(&row), "docs/operations.md has no row `{row}`");
            }
        }
    }

    #[test]
    fn toml_round_trips() {
        let mut c = Config::new("/tmp/x");
        c.durability = Durability::Buffered;
        c.linger = Duration::from_micros(250);
        c.max_batch_bytes = ByteSize::kib(512);
        c.compression = Compression::Zstd;
        c.wal_recycle_files = 4;
        c.max_write_buffers = 4;
        c.blob_min_size = ByteSize::kib(4);
        c.blob_gc_garbage_percent = 50;
        c.sst_bytes_per_sync = ByteSize(0);
        c.sst_direct_io = false;
        c.sst_io_size = ByteSize::kib(512);
        c.wal_presize = false;
        c.wal_delete_chunk = ByteSize(0);
        c.sst_delete_chunk = ByteSize::kib(64);
        c.l0_compaction_trigger = 2;
        c.level_base_size = ByteSize::mib(256);
        assert_eq!(Config::from_toml_str(&c.to_toml_string()).ok(), Some(c));
    }

    #[test]
    fn sizes_and_durations_read_as_humans_write_them() {
        let c = Config::from_toml_str("max_batch_bytes = \"8MiB\"\nlinger = \"2ms\"\nmax_entry_bytes = 1024");
        let c = c.ok();
        assert_eq!(c.as_ref().map(|c| c.max_batch_bytes), Some(ByteSize::mib(8)));
        assert_eq!(c.as_ref().map(|c| c.linger), Some(Duration::from_millis(2)));
        assert_eq!(c.as_ref().map(|c| c.max_entry_bytes), Some(ByteSize(1024)));
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            ("max_batch_entries = 0", "max_batch_entries"),
            ("max_batch_bytes = \"1B\"", "max_batch_bytes"),
            ("channel_capacity = 0", "channel_capacity"),
            ("linger = \"5s\"", "linger"),
            ("linger = \"5 parsecs\"", "linger"),
            ("max_entry_bytes = 0", "max_entry_bytes"),
            ("write_buffer_size = \"1KiB\"", "write_buffer_size"),
            ("durability = \"maybe\"", "durability"),
            ("max_batch_entrys = 5", "max_batch_entrys"),
            ("path = \"\"", "path"),
            ("wal_recycle_files = 65", "wal_recycle_files"),
            ("max_write_buffers = 1", "max_write_buffers"),
            ("max_write_buffers = 33", "max_write_buffers"),
            ("blob_min_size = \"512B\"", "blob_min_size"),
            ("blob_gc_garbage_percent = 91", "blob_gc_garbage_percent"),
            ("blob_gc_garbage_percent = -1", "blob_gc_garbage_percent"),
            ("sst_bytes_per_sync = \"4KiB\"", "sst_bytes_per_sync"),
            ("sst_bytes_per_sync = \"1GiB\"", "sst_bytes_per_sync"),
            ("sst_io_size = \"32KiB\"", "sst_io_size"),
            ("sst_io_size = \"32MiB\"", "sst_io_size"),
            ("sst_io_size = \"100KB\"", "sst_io_size"),
            ("wal_delete_chunk = \"4KiB\"", "wal_delete_chunk"),
            ("wal_delete_chunk = \"2GiB\"", "wal_delete_chunk"),
            ("sst_delete_chunk = \"4KiB\"", "sst_delete_chunk"),
            ("sst_delete_chunk = \"2GiB\"", "sst_delete_chunk"),
            ("l0_compaction_trigger = 0", "l0_compaction_trigger"),
            ("l0_compaction_trigger = 17", "l0_compaction_trigger"),
            ("level_base_size = \"512KiB\"", "level_base_size"),
            ("level_base_size = \"2TiB\"", "level_base_size"),
        ];
        for (toml, field) in cases {
            match Config::from_toml_str(toml) {
                Err(Error::InvalidConfig(msg)) => assert!(msg.contains(field), "{toml}: {msg}"),
                other => panic!("{toml}: expected InvalidConfig, got {other:?}"),
            }
        }
    }
}
