//! Model-based test: random sequences of operations over a few groups run against rocklog
//! and against a small in-memory model that states the log semantics on its own (which
//! commands are accepted, which error a refused one gets, what the log then holds). After
//! every step every read is compared: log state, entries with and without a byte limit,
//! entry and term at every index near the log, hard state, metadata, the list of groups.
//! A refused command must get the model's error and change nothing. Some steps send
//! several writes at once (they share group commits), every other lone write goes
//! through the blocking API (committed on the test's thread while the writer is idle),
//! and some close and reopen the engine; every case ends with a reopen, so recovery must find what the model holds.
//!
//! Operations point at indexes relative to the log when they run ("the next index", "two
//! back", "index 1"), so most of them land somewhere meaningful; the failure message lists
//! the concrete commands. `ROCKLOG_MODEL_CASES=100000 cargo test --all-features --test
//! model` runs more cases than the default 256.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::future::Future;
use std::ops::Bound;
use std::pin::Pin;
use std::task::Poll;

use bytes::Bytes;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use rocklog::{ByteSize, Config, Durability, Entry, Error, HardState, LogId, LogState, LogStore};

/// The groups operations pick from: neighbours in key order, so a delete that spills
/// over a group's key range shows up in the next one.
const GROUPS: [u64; 3] = [0, 1, 2];
/// A tiny entry limit, so that `EntryTooLarge` comes up.
const MAX_ENTRY_BYTES: u64 = 6;

// ----- the generated operations -----

/// Where an operation points, resolved against the group's log when it runs.
#[derive(Clone, Copy, Debug)]
enum At {
    /// `k` below the next index: 0 is the next index (an append there extends the log),
    /// 1 the last entry (or the purge boundary of an empty log), and so on.
    Back(u8),
    /// `k` past the next index (a gap).
    Past(u8),
    /// This index.
    Abs(u8),
}

/// A term, relative to the term of the entry (or boundary) just before the position.
#[derive(Clone, Copy, Debug)]
enum Term {
    Same,
    Up(u8),
    Down(u8),
}

/// Something wrong inside one append call, at the entry `pos % len`.
#[derive(Clone, Copy, Debug)]
enum Flaw {
    None,
    /// The indexes jump by two at that entry.
    Skip(u8),
    /// That entry's term is below the previous entry's.
    Regress(u8),
}

#[derive(Clone)]
enum Op {
    /// Entries from `at`; each `(bump, len)` raises the term by `bump` and carries `len`
    /// payload bytes.
    Append {
        g: u64,
        at: At,
        term: Term,
        ents: Vec<(u8, u8)>,
        flaw: Flaw,
    },
    Truncate {
        g: u64,
        at: At,
    },
    Purge {
        g: u64,
        at: At,
        term: Term,
    },
    SaveHardState {
        g: u64,
        term: u8,
        vote: Option<u8>,
        commit: u8,
    },
    /// Opaque metadata of `len` bytes.
    SaveMetadata {
        g: u64,
        len: u8,
    },
    Reset {
        g: u64,
    },
    Remove {
        g: u64,
    },
    Create {
        g: u64,
    },
    Flush,
    /// Writes sent together, so that they can share one group commit.
    Batch(Vec<Op>),
    /// Shut the engine down and open the directory again.
    Reopen,
}

/// One line per operation, even in proptest's `{:#?}` listing of a failing case.
impl std::fmt::Debug for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Op::Append { g, at, term, ents, flaw } => {
                write!(f, "Append {{ g: {g}, at: {at:?}, term: {term:?}, ents: {ents:?}, flaw: {flaw:?} }}")
            }
            Op::Truncate { g, at } => write!(f, "Truncate {{ g: {g}, at: {at:?} }}"),
            Op::Purge { g, at, term } => write!(f, "Purge {{ g: {g}, at: {at:?}, term: {term:?} }}"),
            Op::SaveHardState { g, term, vote, commit } => {
                write!(f, "SaveHardState {{ g: {g}, term: {term}, vote: {vote:?}, commit: {commit} }}")
            }
            Op::SaveMetadata { g, len } => write!(f, "SaveMetadata {{ g: {g}, len: {len} }}"),
            Op::Reset { g } => write!(f, "Reset {{ g: {g} }}"),
            Op::Remove { g } => write!(f, "Remove {{ g: {g} }}"),
            Op::Create { g } => write!(f, "Create {{ g: {g} }}"),
            Op::Flush => write!(f, "Flush"),
            Op::Batch(ops) => {
                let ops: Vec<String> = ops.iter().map(|op| format!("{op:?}")).collect();
                write!(f, "Batch[{}]", ops.join("; "))
            }
            Op::Reopen => write!(f, "Reopen"),
        }
    }
}

fn at() -> impl Strategy<Value = At> {
    prop_oneof![6 => (0u8..=5).prop_map(At::Back), 1 => (1u8..=2).prop_map(At::Past), 2 => (0u8..=3).prop_map(At::Abs)]
}

fn term() -> impl Strategy<Value = Term> {
    prop_oneof![6 => Just(Term::Same), 3 => (1u8..=2).prop_map(Term::Up), 1 => (1u8..=2).prop_map(Term::Down)]
}

fn group() -> impl Strategy<Value = u64> {
    prop::sample::select(GROUPS.to_vec())
}

fn write_op() -> impl Strategy<Value = Op> {
    let ent = (prop_oneof![4 => Just(0u8), 1 => Just(1u8)], prop_oneof![12 => 0u8..=4, 1 => 5u8..=8]);
    let flaw = prop_oneof![
        12 => Just(Flaw::None),
        1 => any::<u8>().prop_map(Flaw::Skip),
        1 => any::<u8>().prop_map(Flaw::Regress),
    ];
    prop_oneof![
        30 => (group(), at(), term(), prop::collection::vec(ent, 0..=4), flaw)
            .prop_map(|(g, at, term, ents, flaw)| Op::Append { g, at, term, ents, flaw }),
        8 => (group(), at()).prop_map(|(g, at)| Op::Truncate { g, at }),
        8 => (group(), at(), term()).prop_map(|(g, at, term)| Op::Purge { g, at, term }),
        5 => (group(), 0u8..=3, prop::option::of(0u8..=3), 0u8..=5)
            .prop_map(|(g, term, vote, commit)| Op::SaveHardState { g, term, vote, commit }),
        2 => (group(), 0u8..=3).prop_map(|(g, len)| Op::SaveMetadata { g, len }),
        2 => group().prop_map(|g| Op::Reset { g }),
        2 => group().prop_map(|g| Op::Remove { g }),
        2 => group().prop_map(|g| Op::Create { g }),
        2 => Just(Op::Flush),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        60 => write_op(),
        6 => prop::collection::vec(write_op(), 2..=5).prop_map(Op::Batch),
        1 => Just(Op::Reopen),
    ]
}

// ----- the model -----

/// A refused command or read, as the caller sees it. Anything else rocklog returns is
/// `Other`, which the model never expects.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Refusal {
    Gap { group: u64, index: u64, expected: u64 },
    NonContiguous { group: u64, previous: u64, index: u64 },
    BelowPurgeBoundary { group: u64, index: u64, boundary: u64 },
    BelowFirstIndex { group: u64, index: u64, first: u64 },
    Compacted { group: u64, index: u64, first: u64 },
    EntryTooLarge { group: u64, index: u64, size: u64, limit: u64 },
    TermMismatch { group: u64, index: u64, expected: u64, found: u64 },
    TermRegression { group: u64, index: u64, term: u64, previous: u64 },
    GroupNotFound(u64),
    Other(String),
}

fn refusal(e: Error) -> Refusal {
    match e {
        Error::Gap { group, index, expected } => Refusal::Gap { group, index, expected },
        Error::NonContiguous { group, previous, index } => Refusal::NonContiguous { group, previous, index },
        Error::BelowPurgeBoundary { group, index, boundary } => {
            Refusal::BelowPurgeBoundary { group, index, boundary }
        }
        Error::BelowFirstIndex { group, index, first } => Refusal::BelowFirstIndex { group, index, first },
        Error::Compacted { group, index, first } => Refusal::Compacted { group, index, first },
        Error::EntryTooLarge { group, index, size, limit } => {
            Refusal::EntryTooLarge { group, index, size, limit }
        }
        Error::TermMismatch { group, index, expected, found } => {
            Refusal::TermMismatch { group, index, expected, found }
        }
        Error::TermRegression { group, index, term, previous } => {
            Refusal::TermRegression { group, index, term, previous }
        }
        Error::GroupNotFound(g) => Refusal::GroupNotFound(g),
        other => Refusal::Other(other.to_string()),
    }
}

fn engine<T>(r: rocklog::Result<T>) -> Result<T, Refusal> {
    r.map_err(refusal)
}

/// One group: its entries by index, purge boundary, hard state and metadata.
#[derive(Clone, Debug, Default)]
struct ModelGroup {
    log: BTreeMap<u64, Entry>,
    purged: Option<LogId>,
    hard_state: Option<HardState>,
    metadata: Option<Bytes>,
}

impl ModelGroup {
    fn first_index(&self) -> Option<u64> {
        self.log.keys().next().copied()
    }

    /// The last entry's id, or the purge boundary of an empty log.
    fn last_log_id(&self) -> Option<LogId> {
        self.log.values().next_back().map(Entry::log_id).or(self.purged)
    }

    /// The index an append may start at, at the highest: right after the last log id; a
    /// log that never held anything takes 0 or 1.
    fn next_index(&self) -> u64 {
        self.last_log_id().map_or(1, |l| l.index + 1)
    }

    /// The term of the entry at `index`, or of the purge boundary when it is `index`.
    fn term(&self, index: u64) -> Option<u64> {
        match self.log.get(&index) {
            Some(e) => Some(e.term),
            None => self.purged.filter(|p| p.index == index).map(|p| p.term),
        }
    }

    fn log_state(&self) -> LogState {
        LogState { first_index: self.first_index(), last_log_id: self.last_log_id(), purged: self.purged }
    }
}

/// A concrete command, resolved from an [`Op`] against the model.
#[derive(Clone, Debug)]
enum Cmd {
    Append(u64, Vec<Entry>),
    Truncate(u64, u64),
    Purge(u64, LogId),
    SaveHardState(u64, HardState),
    SaveMetadata(u64, Bytes),
    Reset(u64),
    Remove(u64),
    Create(u64),
    Flush,
}

impl std::fmt::Display for Cmd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Cmd::Append(g, es) => {
                let es: Vec<String> =
                    es.iter().map(|e| format!("{}@{} {}B", e.index, e.term, e.payload.len())).collect();
                write!(f, "g{g} append [{}]", es.join(", "))
            }
            Cmd::Truncate(g, from) => write!(f, "g{g} truncate {from}.."),
            Cmd::Purge(g, upto) => write!(f, "g{g} purge ..={upto}"),
            Cmd::SaveHardState(g, hs) => write!(f, "g{g} save {hs:?}"),
            Cmd::SaveMetadata(g, m) => write!(f, "g{g} save_metadata {m:?}"),
            Cmd::Reset(g) => write!(f, "g{g} reset"),
            Cmd::Remove(g) => write!(f, "g{g} remove"),
            Cmd::Create(g) => write!(f, "g{g} create"),
            Cmd::Flush => write!(f, "flush"),
        }
    }
}

#[derive(Clone, Debug, Default)]
struct Model {
    groups: BTreeMap<u64, ModelGroup>,
}

impl Model {
    fn group(&self, g: u64) -> Result<&ModelGroup, Refusal> {
        self.groups.get(&g).ok_or(Refusal::GroupNotFound(g))
    }

    /// What `op` means for the log as it is now; `serial` makes payloads unique per step.
    fn resolve(&self, op: &Op, serial: u64) -> Cmd {
        let empty = ModelGroup::default();
        let group = |g: u64| self.groups.get(&g).unwrap_or(&empty);
        let index = |g: u64, at: At| {
            let next = group(g).next_index();
            match at {
                At::Back(k) => next.saturating_sub(u64::from(k)),
                At::Past(k) => next + u64::from(k),
                At::Abs(i) => u64::from(i),
            }
        };
        let term = |base: u64, t: Term| match t {
            Term::Same => base,
            Term::Up(k) => base + u64::from(k),
            Term::Down(k) => base.saturating_sub(u64::from(k)),
        };
        // The term just before `index` (or of the last log id, or 1).
        let base = |g: u64, index: u64| {
            let grp = group(g);
            index.checked_sub(1).and_then(|i| grp.term(i)).or(grp.last_log_id().map(|l| l.term)).unwrap_or(1)
        };
        match op {
            Op::Append { g, at, term: t, ents, flaw } => {
                let start = index(*g, *at);
                let mut t = term(base(*g, start), *t);
                let mut out = Vec::with_capacity(ents.len());
                let mut i = start;
                for (n, (bump, len)) in ents.iter().enumerate() {
                    t += u64::from(*bump);
                    let mut this_term = t;
                    let hit = |pos: u8| n > 0 && n == 1 + usize::from(pos) % (ents.len() - 1).max(1);
                    match flaw {
                        Flaw::Skip(pos) if hit(*pos) => i += 1,
                        Flaw::Regress(pos) if hit(*pos) && t > 0 => {
                            this_term = out.last().map_or(t, |e: &Entry| e.term).saturating_sub(1);
                            t = this_term;
                        }
                        _ => {}
                    }
                    let fill = serial.to_le_bytes()[0].wrapping_mul(31).wrapping_add(n.to_le_bytes()[0]);
                    out.push(Entry::new(i, this_term, vec![fill; usize::from(*len)]));
                    i += 1;
                }
                Cmd::Append(*g, out)
            }
            Op::Truncate { g, at } => Cmd::Truncate(*g, index(*g, *at)),
            Op::Purge { g, at, term: t } => {
                let i = index(*g, *at);
                let here = group(*g).term(i).unwrap_or_else(|| base(*g, i));
                Cmd::Purge(*g, LogId::new(term(here, *t), i))
            }
            Op::SaveHardState { g, term, vote, commit } => Cmd::SaveHardState(
                *g,
                HardState { term: u64::from(*term), vote: vote.map(u64::from), commit: u64::from(*commit) },
            ),
            Op::SaveMetadata { g, len } => Cmd::SaveMetadata(
                *g,
                Bytes::from(vec![serial.to_le_bytes()[0].wrapping_mul(7); usize::from(*len)]),
            ),
            Op::Reset { g } => Cmd::Reset(*g),
            Op::Remove { g } => Cmd::Remove(*g),
            Op::Create { g } => Cmd::Create(*g),
            Op::Flush | Op::Batch(_) | Op::Reopen => Cmd::Flush,
        }
    }

    /// Carries out `cmd` by the rules of DESIGN.md's log semantics; a refused command
    /// changes nothing.
    fn apply(&mut self, cmd: &Cmd) -> Result<(), Refusal> {
        match cmd {
            Cmd::Append(g, es) => self.append(*g, es),
            Cmd::Truncate(g, from) => {
                let group = self.groups.get_mut(g).ok_or(Refusal::GroupNotFound(*g))?;
                if let Some(p) = group.purged.filter(|p| *from <= p.index) {
                    return Err(Refusal::BelowPurgeBoundary { group: *g, index: *from, boundary: p.index });
                }
                group.log.split_off(from);
                Ok(())
            }
            Cmd::Purge(g, upto) => self.purge(*g, *upto),
            Cmd::SaveHardState(g, hs) => {
                self.groups.entry(*g).or_default().hard_state = Some(*hs);
                Ok(())
            }
            Cmd::SaveMetadata(g, m) => {
                self.groups.entry(*g).or_default().metadata = Some(m.clone());
                Ok(())
            }
            Cmd::Reset(g) => {
                let group = self.groups.get_mut(g).ok_or(Refusal::GroupNotFound(*g))?;
                group.log.clear();
                group.purged = None;
                Ok(())
            }
            Cmd::Remove(g) => self.groups.remove(g).map(drop).ok_or(Refusal::GroupNotFound(*g)),
            Cmd::Create(g) => {
                self.groups.entry(*g).or_default();
                Ok(())
            }
            Cmd::Flush => Ok(()),
        }
    }

    /// Checks in this order: the call's own shape (consecutive indexes, terms not going
    /// back, entry sizes), then its place in the log (not at or below the boundary, not
    /// below the first entry, no gap, no term below the one before it); then replaces
    /// `[start, ∞)`.
    fn append(&mut self, g: u64, es: &[Entry]) -> Result<(), Refusal> {
        let Some(first) = es.first() else { return Ok(()) };
        for w in es.windows(2) {
            if w[1].index != w[0].index + 1 {
                return Err(Refusal::NonContiguous { group: g, previous: w[0].index, index: w[1].index });
            }
            if w[1].term < w[0].term {
                return Err(Refusal::TermRegression {
                    group: g,
                    index: w[1].index,
                    term: w[1].term,
                    previous: w[0].term,
                });
            }
        }
        if let Some(e) = es.iter().find(|e| e.payload.len() as u64 > MAX_ENTRY_BYTES) {
            let size = e.payload.len() as u64;
            return Err(Refusal::EntryTooLarge { group: g, index: e.index, size, limit: MAX_ENTRY_BYTES });
        }
        let empty = ModelGroup::default();
        let group = self.groups.get(&g).unwrap_or(&empty);
        let start = first.index;
        if let Some(p) = group.purged.filter(|p| start <= p.index) {
            return Err(Refusal::BelowPurgeBoundary { group: g, index: start, boundary: p.index });
        }
        // Index 0 on a log numbered from 1: the only way below the first entry that is
        // not below a purge boundary.
        if let Some(first) = group.first_index().filter(|&f| start < f) {
            return Err(Refusal::BelowFirstIndex { group: g, index: start, first });
        }
        if start > group.next_index() {
            return Err(Refusal::Gap { group: g, index: start, expected: group.next_index() });
        }
        if let Some(previous) = start.checked_sub(1).and_then(|i| group.term(i))
            && first.term < previous
        {
            return Err(Refusal::TermRegression { group: g, index: start, term: first.term, previous });
        }
        let group = self.groups.entry(g).or_default();
        group.log.split_off(&start);
        group.log.extend(es.iter().map(|e| (e.index, e.clone())));
        Ok(())
    }

    /// Refuses a boundary below the current one or a log id whose term is not the one
    /// stored at its index; purging at the current boundary again changes nothing.
    fn purge(&mut self, g: u64, upto: LogId) -> Result<(), Refusal> {
        if let Some(group) = self.groups.get(&g) {
            if let Some(p) = group.purged.filter(|p| upto.index < p.index) {
                return Err(Refusal::BelowPurgeBoundary { group: g, index: upto.index, boundary: p.index });
            }
            if let Some(found) = group.term(upto.index)
                && found != upto.term
            {
                return Err(Refusal::TermMismatch {
                    group: g,
                    index: upto.index,
                    expected: upto.term,
                    found,
                });
            }
        }
        let group = self.groups.entry(g).or_default();
        group.log = group.log.split_off(&(upto.index + 1));
        group.purged = Some(upto);
        Ok(())
    }

    /// A range read: the entries of `[lo, hi)` in the log, cut at the last entry. A range
    /// that, so cut, is not empty and starts below the first index the log can serve
    /// (its first entry, or the boundary + 1 of an empty purged log) is `Compacted`. With
    /// a byte limit, stops before the entry that would take the payload total past it,
    /// but returns at least one entry.
    fn entries(
        &self,
        g: u64,
        range: (Bound<u64>, Bound<u64>),
        max: Option<u64>,
    ) -> Result<Vec<Entry>, Refusal> {
        let group = self.group(g)?;
        let lo = match range.0 {
            Bound::Unbounded => None,
            Bound::Included(i) => Some(i),
            Bound::Excluded(i) => Some(i + 1),
        };
        let hi = match range.1 {
            Bound::Unbounded => u64::MAX,
            Bound::Included(i) => i.saturating_add(1),
            Bound::Excluded(i) => i,
        };
        let cut = group.last_log_id().map_or(0, |l| hi.min(l.index + 1));
        let serves_from = group.first_index().or(group.purged.map(|p| p.index + 1));
        if let (Some(lo), Some(first)) = (lo, serves_from)
            && lo < first
            && lo < cut
        {
            return Err(Refusal::Compacted { group: g, index: lo, first });
        }
        let mut out = Vec::new();
        let mut total = 0u64;
        for e in group.log.range(lo.unwrap_or(0)..).take_while(|e| *e.0 < hi).map(|e| e.1) {
            total += e.payload.len() as u64;
            if max.is_some_and(|m| total > m) && !out.is_empty() {
                break;
            }
            out.push(e.clone());
        }
        Ok(out)
    }
}

// ----- running both -----

struct Harness {
    config: Config,
    store: Option<LogStore>,
    model: Model,
    /// What ran so far, for the failure message.
    trace: Vec<String>,
    serial: u64,
}

/// Polls `futures` in order until all are done: each one's first poll sends its command,
/// so the writer receives them in this order (and may commit them in one batch).
async fn join_in_order<'a>(
    mut futures: Vec<Pin<Box<dyn Future<Output = rocklog::Result<()>> + 'a>>>,
) -> Vec<rocklog::Result<()>> {
    let mut results: Vec<Option<rocklog::Result<()>>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        for (f, r) in futures.iter_mut().zip(results.iter_mut()) {
            if r.is_none()
                && let Poll::Ready(out) = f.as_mut().poll(cx)
            {
                *r = Some(out);
            }
        }
        if results.iter().all(Option::is_some) { Poll::Ready(()) } else { Poll::Pending }
    })
    .await;
    results.into_iter().flatten().collect()
}

fn send<'a>(store: &'a LogStore, cmd: &'a Cmd) -> Pin<Box<dyn Future<Output = rocklog::Result<()>> + 'a>> {
    match cmd {
        Cmd::Append(g, es) => Box::pin(async move { store.group(*g).append(es).await }),
        Cmd::Truncate(g, from) => Box::pin(async move { store.group(*g).truncate(*from).await }),
        Cmd::Purge(g, upto) => Box::pin(async move { store.group(*g).purge(*upto).await }),
        Cmd::SaveHardState(g, hs) => Box::pin(async move { store.group(*g).save_hard_state(*hs).await }),
        Cmd::SaveMetadata(g, m) => Box::pin(async move { store.group(*g).save_metadata(m.clone()).await }),
        Cmd::Reset(g) => Box::pin(async move { store.group(*g).reset().await }),
        Cmd::Remove(g) => Box::pin(async move { store.group(*g).remove().await }),
        Cmd::Create(g) => Box::pin(async move { store.group(*g).create().await }),
        Cmd::Flush => Box::pin(store.flush()),
    }
}

/// The same command through the blocking API, which commits on this thread when the
/// writer is idle (`Config::inline_commits`).
fn send_blocking(store: &LogStore, cmd: &Cmd) -> rocklog::Result<()> {
    match cmd {
        Cmd::Append(g, es) => store.group(*g).blocking().append(es),
        Cmd::Truncate(g, from) => store.group(*g).blocking().truncate(*from),
        Cmd::Purge(g, upto) => store.group(*g).blocking().purge(*upto),
        Cmd::SaveHardState(g, hs) => store.group(*g).blocking().save_hard_state(*hs),
        Cmd::SaveMetadata(g, m) => store.group(*g).blocking().save_metadata(m.clone()),
        Cmd::Reset(g) => store.group(*g).blocking().reset(),
        Cmd::Remove(g) => store.group(*g).blocking().remove(),
        Cmd::Create(g) => store.group(*g).blocking().create(),
        Cmd::Flush => store.flush_blocking(),
    }
}

impl Harness {
    fn store(&self) -> &LogStore {
        self.store.as_ref().expect("engine open")
    }

    fn context(&self) -> String {
        format!("after:\n  {}", self.trace.join("\n  "))
    }

    async fn step(&mut self, op: &Op) -> Result<(), TestCaseError> {
        match op {
            Op::Reopen => {
                self.trace.push("reopen".into());
                let store = self.store.take().expect("engine open");
                store.shutdown().await.map_err(|e| TestCaseError::fail(format!("shutdown: {e}")))?;
                drop(store);
                let reopened = LogStore::start(self.config.clone());
                self.store = Some(reopened.map_err(|e| TestCaseError::fail(format!("reopen: {e}")))?);
                Ok(())
            }
            Op::Batch(ops) => self.writes(ops).await,
            op => self.writes(std::slice::from_ref(op)).await,
        }
    }

    /// Resolves and applies `ops` to the model one after the other, sends them to the
    /// engine together, and compares each outcome.
    async fn writes(&mut self, ops: &[Op]) -> Result<(), TestCaseError> {
        let mut cmds = Vec::with_capacity(ops.len());
        let mut expected = Vec::with_capacity(ops.len());
        for op in ops {
            self.serial += 1;
            let cmd = self.model.resolve(op, self.serial);
            expected.push(self.model.apply(&cmd));
            cmds.push(cmd);
        }
        let store = self.store.take().expect("engine open");
        // Every other lone write goes through the blocking API (mostly committed inline).
        let blocking = cmds.len() == 1 && self.serial.is_multiple_of(2);
        let results = if blocking {
            cmds.iter().map(|c| send_blocking(&store, c)).collect()
        } else {
            join_in_order(cmds.iter().map(|c| send(&store, c)).collect()).await
        };
        self.store = Some(store);
        let joined = if cmds.len() > 1 {
            "  (together)"
        } else if blocking {
            "  (blocking)"
        } else {
            ""
        };
        for ((cmd, want), got) in cmds.iter().zip(&expected).zip(results) {
            let outcome = match want {
                Ok(()) => String::new(),
                Err(e) => format!(" -> {e:?}"),
            };
            self.trace.push(format!("{cmd}{outcome}{joined}"));
            prop_assert_eq!(engine(got), want.clone(), "{}\n{}", cmd, self.context());
        }
        Ok(())
    }

    /// Compares every read of every group with the model.
    fn check_reads(&self) -> Result<(), TestCaseError> {
        let store = self.store();
        let model = &self.model;
        let ctx = || self.context();
        prop_assert_eq!(store.groups(), model.groups.keys().copied().collect::<Vec<_>>(), "{}", ctx());
        for g in GROUPS {
            let grp = store.group(g);
            let mg = model.group(g);
            let state = mg.clone().map(ModelGroup::log_state);
            prop_assert_eq!(engine(grp.log_state()), state.clone(), "g{} log_state {}", g, ctx());
            prop_assert_eq!(engine(grp.first_index()), state.clone().map(|s| s.first_index), "{}", ctx());
            prop_assert_eq!(engine(grp.last_index()), state.clone().map(|s| s.last_index()), "{}", ctx());
            prop_assert_eq!(engine(grp.last_log_id()), state.clone().map(|s| s.last_log_id), "{}", ctx());
            prop_assert_eq!(engine(grp.purged()), state.clone().map(|s| s.purged), "{}", ctx());
            prop_assert_eq!(grp.exists(), mg.is_ok(), "g{} exists {}", g, ctx());
            let hard = mg.clone().map(|m| m.hard_state);
            prop_assert_eq!(engine(grp.hard_state()), hard, "g{} hard_state {}", g, ctx());
            let metadata = mg.clone().map(|m| m.metadata.clone());
            prop_assert_eq!(engine(grp.metadata()), metadata, "g{} metadata {}", g, ctx());

            let last = state.as_ref().ok().and_then(rocklog::LogState::last_index).unwrap_or(0);
            for i in (0..=last + 3).chain([u64::MAX]) {
                let entry = mg.clone().map(|m| m.log.get(&i).cloned());
                prop_assert_eq!(engine(grp.entry(i)), entry, "g{} entry({}) {}", g, i, ctx());
                let term = mg.clone().map(|m| m.term(i));
                prop_assert_eq!(engine(grp.term(i)), term, "g{} term({}) {}", g, i, ctx());
            }

            let mut points: Vec<u64> = vec![0, 1, last, last + 1, last + 2];
            if let Ok(s) = &state {
                points.extend(s.first_index);
                points.extend(s.purged.map(|p| p.index));
                points.extend(s.purged.map(|p| p.index + 1));
                points.extend(s.first_index.map(|f| u64::midpoint(f, last)));
            }
            points.sort_unstable();
            points.dedup();
            let mut ranges: Vec<(Bound<u64>, Bound<u64>)> = vec![(Bound::Unbounded, Bound::Unbounded)];
            for &lo in &points {
                ranges.push((Bound::Included(lo), Bound::Unbounded));
                ranges.push((Bound::Unbounded, Bound::Excluded(lo)));
                ranges.push((Bound::Excluded(lo), Bound::Included(last)));
                for &hi in points.iter().filter(|&&hi| hi >= lo) {
                    ranges.push((Bound::Included(lo), Bound::Excluded(hi)));
                }
            }
            for range in ranges {
                let want = model.entries(g, range, None);
                prop_assert_eq!(
                    engine(grp.entries(range, None)),
                    want,
                    "g{} entries({:?}) {}",
                    g,
                    range,
                    ctx()
                );
            }
            for max in [0, 3, 6, 9] {
                for range in [(Bound::Unbounded, Bound::Unbounded), (Bound::Included(last), Bound::Unbounded)]
                {
                    let want = model.entries(g, range, Some(max));
                    let got = engine(grp.entries(range, Some(max)));
                    prop_assert_eq!(got, want, "g{} entries({:?}, max {}) {}", g, range, max, ctx());
                }
            }
        }
        Ok(())
    }
}

async fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = Config::new(dir.path());
    // Reopening is the only durability this test relies on: shutdown syncs.
    config.durability = Durability::Buffered;
    config.max_entry_bytes = ByteSize(MAX_ENTRY_BYTES);
    // Small group commits, so that the writes of one `Batch` also span several.
    config.max_batch_entries = 4;
    let store = LogStore::start(config.clone()).map_err(|e| TestCaseError::fail(format!("open: {e}")))?;
    let mut h = Harness { config, store: Some(store), model: Model::default(), trace: Vec::new(), serial: 0 };
    h.check_reads()?;
    for op in &ops {
        h.step(op).await?;
        h.check_reads()?;
    }
    // A last reopen: whatever the sequence left must be what recovery finds.
    h.step(&Op::Reopen).await?;
    h.check_reads()?;
    if let Some(store) = h.store.take() {
        store.shutdown().await.map_err(|e| TestCaseError::fail(format!("shutdown: {e}")))?;
    }
    Ok(())
}

fn cases() -> u32 {
    std::env::var("ROCKLOG_MODEL_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    /// rocklog and the model agree on every outcome and every read, step by step. Half
    /// the cases run on a multi-threaded runtime, where lone async writes commit inline
    /// (`Config::inline_commits`); on a current-thread one they go through the writer.
    #[test]
    fn engine_matches_the_model(ops in prop::collection::vec(op(), 1..=40), multi_thread in any::<bool>()) {
        let rt = if multi_thread {
            tokio::runtime::Builder::new_multi_thread().worker_threads(2).build()
        } else {
            tokio::runtime::Builder::new_current_thread().build()
        };
        rt.expect("runtime").block_on(run(ops))?;
    }
}
