//! `rocklog import-d-engine`: copies a d-engine 0.2.3 RocksDB log and hard state into a new
//! rocklog directory, in the encoding of [`rocklog::d_engine`], and verifies the copy.
//!
//! d-engine-server 0.2.3's `RocksDBStorageEngine` keeps, in one RocksDB directory:
//! - column family `logs`: key = index (u64 big-endian), value = d-engine-proto's `Entry`
//!   (protobuf);
//! - column family `meta`: key `hard_state` = `HardState { current_term: u64, voted_for:
//!   Option<VotedFor { voted_for_id: u32, voted_for_term: u64, committed: bool }> }` in
//!   bincode 1.x (fixed-width little-endian integers, a one-byte `Option` tag). Later
//!   d-engine versions also record a `purge_boundary` (protobuf `LogId`), honoured here.
//!
//! Three passes over the source, which is opened read-only and never changed: validate
//! everything (refusing, with nothing written anywhere, on a missing column family, an
//! undecodable record, an entry whose key disagrees with its index, a gap, terms going
//! backwards), then write in bounded batches into `DST.rocklog-import`, then re-read it,
//! compare every entry and the hard state, and run the checks of `rocklog check`. Only then
//! is it renamed to `DST` (and the rename fsynced): a killed or power-cut import never
//! leaves a `DST` that opens as a complete log.
//!
//! 0.2.3 records no purge boundary: a log that starts above index 1 gets the boundary
//! `first - 1` with term 0, "unknown" (Raft terms start at 1, so no entry matches it, and a
//! leader falls back to a snapshot rather than trusting it).

use std::error::Error;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use bincode::Options as _;
use d_engine_core::HardState as DHardState;
use d_engine_proto::common::{Entry as DEntry, LogId as DLogId};
use prost_d_engine::Message;
use rocklog::d_engine::{decode_entry, encode_entry, encode_hard_state};
use rocklog::offline::OfflineLog;
use rocklog::{Config, Entry, LogId, LogStore};
use rocksdb::{DB, DBRawIteratorWithThreadMode, Options};

type CliResult = Result<ExitCode, Box<dyn Error>>;

const LOGS_CF: &str = "logs";
const META_CF: &str = "meta";
const HARD_STATE_KEY: &[u8] = b"hard_state";
const PURGE_BOUNDARY_KEY: &[u8] = b"purge_boundary";
/// A write batch ends at this many entries or bytes, whichever comes first: memory stays
/// bounded whatever the size of the log.
const BATCH_ENTRIES: usize = 4096;
const BATCH_BYTES: usize = 4 << 20;

/// Options of `rocklog import-d-engine`.
#[derive(clap::Args, Debug)]
pub struct ImportArgs {
    /// The d-engine data directory (RocksDB with column families `logs` and `meta`); opened
    /// read-only. Stop the d-engine node first.
    pub src: PathBuf,
    /// The rocklog directory to create; it must not exist or be empty.
    pub dst: PathBuf,
    /// The rocklog group that receives the log and hard state.
    #[arg(long, short, default_value_t = 1)]
    pub group: u64,
}

/// Why the source cannot be imported; nothing was written.
#[derive(Debug)]
struct Refused(String);

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "refusing to import: {}; nothing was written", self.0)
    }
}

impl Error for Refused {}

fn refuse<T>(reason: impl Into<String>) -> Result<T, Box<dyn Error>> {
    Err(Box::new(Refused(reason.into())))
}

/// `rocklog import-d-engine SRC DST [--group G]`.
pub fn run(args: &ImportArgs) -> CliResult {
    let started = Instant::now();
    check_destination(&args.dst)?;
    let staging = staging_path(&args.dst)?;
    if staging.exists() {
        return refuse(format!(
            "{} is left from an interrupted import into {}: delete it, then import again",
            staging.display(),
            args.dst.display()
        ));
    }
    let config = Config::new(&staging);
    let source = Source::open(&args.src)?;
    let summary = source.validate(config.max_entry_bytes.bytes())?;
    if !summary.ignored_meta.is_empty() {
        eprintln!("note: ignoring meta keys {}", summary.ignored_meta.join(", "));
    }
    write(&source, &summary, config, args.group).map_err(|e| {
        format!(
            "import into {} failed: {e}; {} is incomplete: delete it",
            args.dst.display(),
            staging.display()
        )
    })?;
    let checked = verify(&source, &summary, &staging, args.group)
        .map_err(|e| format!("verification of {} failed: {e}", staging.display()))?;
    publish(&staging, &args.dst).map_err(|e| {
        format!("cannot move the verified import {} to {}: {e}", staging.display(), args.dst.display())
    })?;
    print_summary(args, &summary, &checked, started.elapsed());
    Ok(ExitCode::SUCCESS)
}

/// Where the import is written before it is verified: a sibling of the destination, so
/// an interrupted import (a kill, a power loss) never leaves a destination that opens as
/// a complete log. Only a verified import is renamed to the destination.
fn staging_path(dst: &Path) -> Result<PathBuf, Box<dyn Error>> {
    let name = dst.file_name().ok_or_else(|| format!("destination {} has no file name", dst.display()))?;
    let mut staging = name.to_os_string();
    staging.push(".rocklog-import");
    Ok(dst.with_file_name(staging))
}

/// Renames the verified `staging` directory to `dst` (an empty `dst` directory is replaced)
/// and makes the rename durable by fsyncing their parent.
fn publish(staging: &Path, dst: &Path) -> std::io::Result<()> {
    std::fs::rename(staging, dst)?;
    let parent = dst.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::File::open(parent)?.sync_all()
}

fn check_destination(dst: &Path) -> Result<(), Box<dyn Error>> {
    match std::fs::metadata(dst) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("cannot inspect {}: {e}", dst.display()).into()),
        Ok(m) if !m.is_dir() => {
            refuse(format!("destination {} exists and is not a directory", dst.display()))
        }
        Ok(_) => match std::fs::read_dir(dst)?.next() {
            None => Ok(()),
            Some(_) => refuse(format!("destination {} is not empty", dst.display())),
        },
    }
}

/// The d-engine directory, open read-only.
struct Source {
    db: DB,
}

/// What the validation pass found.
struct Summary {
    entries: u64,
    payload_bytes: u64,
    first: Option<LogId>,
    last: Option<LogId>,
    /// The purge boundary to record: the source's, or `first - 1` with term 0 (unknown).
    purged: Option<LogId>,
    purge_recorded: bool,
    hard_state: Option<DHardState>,
    ignored_meta: Vec<String>,
}

impl Source {
    fn open(path: &Path) -> Result<Source, Box<dyn Error>> {
        let where_ = path.display();
        if !path.join("CURRENT").is_file() {
            return refuse(format!("{where_} is not a RocksDB directory (no CURRENT file)"));
        }
        let cfs = match DB::list_cf(&Options::default(), path) {
            Ok(cfs) => cfs,
            Err(e) => return refuse(format!("cannot list the column families of {where_}: {e}")),
        };
        for needed in [LOGS_CF, META_CF] {
            if !cfs.iter().any(|c| c == needed) {
                return refuse(format!(
                    "{where_} is not a d-engine log: column family `{needed}` is missing (found: {})",
                    cfs.join(", ")
                ));
            }
        }
        let db = match DB::open_cf_for_read_only(&Options::default(), path, [LOGS_CF, META_CF], false) {
            Ok(db) => db,
            Err(e) => return refuse(format!("cannot open {where_} read-only: {e}")),
        };
        Ok(Source { db })
    }

    /// Every entry of `logs` in index order, decoded and checked against its key.
    fn entries(&self) -> Result<SourceEntries<'_>, Box<dyn Error>> {
        let cf = self.db.cf_handle(LOGS_CF).ok_or("column family `logs` vanished")?;
        let mut it = self.db.raw_iterator_cf(&cf);
        it.seek_to_first();
        Ok(SourceEntries { it, done: false })
    }

    /// Reads everything once; refuses anything the import could not carry over exactly
    /// (`limit`: the destination's `max_entry_bytes`).
    fn validate(&self, limit: u64) -> Result<Summary, Box<dyn Error>> {
        let (mut entries, mut payload_bytes) = (0u64, 0u64);
        let (mut first, mut last): (Option<LogId>, Option<LogId>) = (None, None);
        for item in self.entries()? {
            let (entry, size) = item.map_err(|e| Refused(e.clone()))?;
            let id = LogId::new(entry.term, entry.index);
            if let Some(prev) = last {
                if Some(id.index) != prev.index.checked_add(1) {
                    return refuse(format!("the log has a gap: index {} follows {}", id.index, prev.index));
                }
                if id.term < prev.term {
                    return refuse(format!(
                        "terms go backwards: entry {} has term {}, entry {} term {}",
                        id.index, id.term, prev.index, prev.term
                    ));
                }
            }
            // The payload rocklog will store: the `EntryPayload` as field 3, as `encode_entry` writes it.
            let stored =
                entry.payload.as_ref().map_or(0, |p| prost_d_engine::encoding::message::encoded_len(3, p))
                    as u64;
            if stored > limit {
                return refuse(format!("entry {} has {stored} bytes, over rocklog's {limit}", id.index));
            }
            first.get_or_insert(id);
            last = Some(id);
            entries += 1;
            payload_bytes += size as u64;
        }

        let meta = self.db.cf_handle(META_CF).ok_or("column family `meta` vanished")?;
        let hard_state = match self.db.get_cf(&meta, HARD_STATE_KEY)? {
            None => None,
            Some(bytes) => Some(decode_bincode_hard_state(&bytes).map_err(|e| Refused(e.clone()))?),
        };
        let recorded = match self.db.get_cf(&meta, PURGE_BOUNDARY_KEY)? {
            None => None,
            Some(bytes) => match DLogId::decode(bytes.as_slice()) {
                Ok(id) => Some(LogId::new(id.term, id.index)),
                Err(e) => return refuse(format!("meta `purge_boundary` does not decode: {e}")),
            },
        };
        let mut ignored_meta = Vec::new();
        let mut it = self.db.raw_iterator_cf(&meta);
        it.seek_to_first();
        while let Some(key) = it.key() {
            if key != HARD_STATE_KEY && key != PURGE_BOUNDARY_KEY {
                ignored_meta.push(String::from_utf8_lossy(key).into_owned());
            }
            it.next();
        }
        it.status()?;

        let purged = match (recorded, first) {
            (Some(p), Some(f)) if p.index.checked_add(1) != Some(f.index) => {
                return refuse(format!(
                    "the purge boundary {p} does not sit right below the first entry {}",
                    f.index
                ));
            }
            (Some(p), _) => Some(p),
            (None, Some(f)) if f.index > 1 => Some(LogId::new(0, f.index - 1)),
            (None, _) => None,
        };
        Ok(Summary {
            entries,
            payload_bytes,
            first,
            last,
            purged,
            purge_recorded: recorded.is_some(),
            hard_state,
            ignored_meta,
        })
    }
}

/// d-engine 0.2.3's `bincode::serialize(&HardState)`, decoded strictly: the same fixed-width
/// encoding, but trailing bytes are refused rather than ignored.
fn decode_bincode_hard_state(bytes: &[u8]) -> Result<DHardState, String> {
    bincode::DefaultOptions::new()
        .with_fixint_encoding()
        .with_little_endian()
        .with_limit(1024)
        .reject_trailing_bytes()
        .deserialize::<DHardState>(bytes)
        .map_err(|e| format!("meta `hard_state` is not a bincode d-engine HardState: {e}"))
}

/// The entries of the `logs` column family, each with its stored size.
struct SourceEntries<'a> {
    it: DBRawIteratorWithThreadMode<'a, DB>,
    done: bool,
}

impl Iterator for SourceEntries<'_> {
    type Item = Result<(DEntry, usize), String>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let Some((key, value)) = self.it.item() else {
            self.done = true;
            return self.it.status().err().map(|e| Err(format!("reading `logs` failed: {e}")));
        };
        let result = decode_source_entry(key, value);
        self.done = result.is_err();
        self.it.next();
        Some(result)
    }
}

fn decode_source_entry(key: &[u8], value: &[u8]) -> Result<(DEntry, usize), String> {
    let Ok(index) = <[u8; 8]>::try_from(key).map(u64::from_be_bytes) else {
        return Err(format!("`logs` holds a key of {} bytes, not an 8-byte index", key.len()));
    };
    let entry = DEntry::decode(value).map_err(|e| format!("entry {index} does not decode: {e}"))?;
    if entry.index != index {
        return Err(format!("the record at key {index} holds entry {}", entry.index));
    }
    Ok((entry, value.len()))
}

/// Creates the destination and writes the boundary, the log in bounded batches, and the
/// hard state, each durably.
fn write(source: &Source, summary: &Summary, config: Config, group: u64) -> Result<(), Box<dyn Error>> {
    let rt = tokio::runtime::Builder::new_current_thread().build()?;
    let store = LogStore::start(config)?;
    let group = store.group(group);
    let result = rt.block_on(async {
        group.create().await?;
        if let Some(p) = summary.purged {
            group.purge(p).await?;
        }
        let (mut batch, mut bytes) = (Vec::with_capacity(BATCH_ENTRIES), 0usize);
        for item in source.entries()? {
            let (entry, _) = item?;
            let encoded: Entry = encode_entry(&entry);
            bytes += encoded.payload.len();
            batch.push(encoded);
            if batch.len() >= BATCH_ENTRIES || bytes >= BATCH_BYTES {
                group.append(&batch).await?;
                batch.clear();
                bytes = 0;
            }
        }
        group.append(&batch).await?;
        if let Some(hs) = &summary.hard_state {
            group.save_hard_state(encode_hard_state(hs)).await?;
        }
        Ok::<(), Box<dyn Error>>(())
    });
    rt.block_on(store.shutdown())?;
    result
}

/// What the verification pass compared.
struct Verified {
    entries: u64,
    check_records: u64,
}

/// Re-reads the destination offline: the `rocklog check` findings, the group's bounds and
/// hard state, and every entry against the source's.
fn verify(source: &Source, summary: &Summary, dir: &Path, group: u64) -> Result<Verified, Box<dyn Error>> {
    let log = OfflineLog::open(dir)?;
    let report = log.check()?;
    if let Some(finding) = report.findings.first() {
        return Err(
            format!("`rocklog check` found {} problem(s), first: {finding}", report.findings.len()).into()
        );
    }
    let groups = log.groups()?;
    let [info] = groups.as_slice() else {
        return Err(format!("expected one group, found {}", groups.len()).into());
    };
    let expect = |what: &str, got: String, want: String| -> Result<(), Box<dyn Error>> {
        if got == want { Ok(()) } else { Err(format!("{what}: rocklog has {got}, d-engine {want}").into()) }
    };
    expect("group", info.id.to_string(), group.to_string())?;
    expect(
        "first index",
        format!("{:?}", info.log.first_index),
        format!("{:?}", summary.first.map(|f| f.index)),
    )?;
    expect(
        "last log id",
        format!("{:?}", info.log.last_log_id),
        format!("{:?}", summary.last.or(summary.purged)),
    )?;
    expect("purge boundary", format!("{:?}", info.log.purged), format!("{:?}", summary.purged))?;
    expect(
        "hard state",
        format!("{:?}", info.hard_state),
        format!("{:?}", summary.hard_state.as_ref().map(encode_hard_state)),
    )?;

    let mut copied = log.entries(group, ..)?;
    let mut compared = 0u64;
    for item in source.entries()? {
        let (want, _) = item?;
        let got = match copied.next() {
            Some(got) => got?,
            None => return Err(format!("entry {} is missing", want.index).into()),
        };
        if decode_entry(group, &got)? != want {
            return Err(format!("entry {} differs", want.index).into());
        }
        compared += 1;
    }
    if let Some(extra) = copied.next() {
        return Err(format!("rocklog holds more entries than d-engine: {:?}", extra.map(|e| e.index)).into());
    }
    Ok(Verified { entries: compared, check_records: report.entries + report.meta_records })
}

fn print_summary(args: &ImportArgs, s: &Summary, v: &Verified, took: std::time::Duration) {
    println!("imported {} into {} (group {})", args.src.display(), args.dst.display(), args.group);
    let range = match (s.first, s.last) {
        (Some(f), Some(l)) => format!("{}..={} (terms {}..={})", f.index, l.index, f.term, l.term),
        _ => "none".into(),
    };
    println!("  entries     {} {range}, {} record bytes", s.entries, s.payload_bytes);
    let purged = match s.purged {
        None => "none".to_owned(),
        Some(p) if s.purge_recorded => format!("up to {p}"),
        Some(p) => format!("up to index {} (term unknown: d-engine 0.2.3 does not record it)", p.index),
    };
    println!("  purged      {purged}");
    let hard_state = match &s.hard_state {
        None => "none".to_owned(),
        Some(DHardState { current_term, voted_for: None }) => format!("term {current_term}, no vote"),
        Some(DHardState { current_term, voted_for: Some(v) }) => format!(
            "term {current_term}, voted for node {} in term {}{}",
            v.voted_for_id,
            v.voted_for_term,
            if v.committed { " (committed)" } else { "" }
        ),
    };
    println!("  hard state  {hard_state}");
    println!(
        "  verified    {} entries re-read and equal; rocklog check: clean ({} records)",
        v.entries, v.check_records
    );
    println!("  took        {took:.2?}");
}
