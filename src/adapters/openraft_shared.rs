//! What the openraft 0.9 and 0.10 adapters share: everything that depends on rocklog's
//! [`Group`] and on openraft's storage rules, not on the types of one openraft version.
//!
//! The two versions differ in their types (0.9's `LogId<NodeId>` and `StorageError`,
//! 0.10's `LogId<CommittedLeaderId>` and `io::Error`) but not in what they ask of a log
//! store, so each adapter turns its types into rocklog's ([`crate::LogId`], entries as
//! MessagePack) and calls [`GroupLog`]; errors come back as [`Failure`], which each adapter
//! puts into its version's error type.
//!
//! openraft's saved purged log id is the authority; rocklog's purge boundary (term and
//! index only) follows it, and [`GroupLog::apply_purge`] finishes a purge a crash cut
//! between the two. Two states rocklog's own rules would refuse are mapped instead: a log
//! whose first entry is above index 1 (openraft's suites build one) gets a rocklog boundary
//! just below it, which openraft never sees; and entries at or below the purged index,
//! which openraft never reads, are left out of an append.

use std::ops::{Bound, RangeBounds};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::handle::Group;
use crate::records::{Entry, LogId};
use crate::state::LogState;

/// How often a range read retries when a purge moved the log's start under it.
const READ_RETRIES: usize = 3;

/// The default bound on one `limited_get_log_entries` answer, in payload bytes (always at
/// least one entry).
pub const DEFAULT_MAX_READ_BYTES: u64 = 4 << 20;

/// Why an adapter call failed, before the adapter puts it into its openraft version's
/// error type.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Failure {
    /// rocklog refused the request or could not carry it out; kept whole, so a caller can
    /// get it back from openraft's error.
    #[error(transparent)]
    Rocklog(#[from] Error),
    /// The adapter refused the request itself.
    #[error("{0}")]
    Refused(String),
    /// An entry or the metadata record did not encode.
    #[error("cannot encode for rocklog: {0}")]
    Encode(#[from] rmp_serde::encode::Error),
    /// A stored entry or metadata record did not decode: the group holds something else.
    #[error("cannot decode rocklog's record: {0}")]
    Decode(#[from] rmp_serde::decode::Error),
}

impl From<Failure> for std::io::Error {
    /// rocklog's own errors travel as the source of an `ErrorKind::Other` error
    /// (`get_ref()` / `into_inner()` and a downcast to [`crate::Error`] give them back);
    /// the adapter's refusals are `InvalidInput`, undecodable records `InvalidData`.
    fn from(failure: Failure) -> Self {
        use std::io::ErrorKind;
        match failure {
            Failure::Rocklog(e) => std::io::Error::other(e),
            e @ (Failure::Refused(_) | Failure::Encode(_)) => std::io::Error::new(ErrorKind::InvalidInput, e),
            e @ Failure::Decode(_) => std::io::Error::new(ErrorKind::InvalidData, e),
        }
    }
}

/// What an adapter keeps in the group's metadata record (see
/// [`Group::save_metadata`]): everything openraft persists besides the entries. `V` is
/// the version's vote, `L` its log id.
///
/// `purged` is openraft's last purged log id, leader id included. It is saved before the
/// entries are deleted, so it is the authority: rocklog's own purge boundary (term and
/// index only) may lag behind it after a crash, until the adapter's `open` finishes the
/// purge, or sit above it where the adapter had to make room for a log that does not start
/// at 0 or 1.
///
/// MessagePack with structs as maps, as the entries: fields added later with
/// `#[serde(default)]` read old records.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound(
    serialize = "V: Serialize, L: Serialize",
    deserialize = "V: DeserializeOwned, L: DeserializeOwned"
))]
pub(crate) struct Meta<V, L> {
    #[serde(default)]
    pub vote: Option<V>,
    #[serde(default)]
    pub committed: Option<L>,
    #[serde(default)]
    pub purged: Option<L>,
}

impl<V, L> Default for Meta<V, L> {
    fn default() -> Self {
        Meta { vote: None, committed: None, purged: None }
    }
}

impl<V: Serialize + DeserializeOwned, L: Serialize + DeserializeOwned> Meta<V, L> {
    /// The record's bytes.
    pub(crate) fn encode(&self) -> Result<Vec<u8>, Failure> {
        Ok(rmp_serde::to_vec_named(self)?)
    }

    /// The metadata saved in `group`, the default when it has none (or does not exist).
    pub(crate) fn load(group: &Group) -> Result<Self, Failure> {
        match group.metadata() {
            Ok(Some(bytes)) => Ok(rmp_serde::from_slice(&bytes)?),
            Ok(None) | Err(Error::GroupNotFound(_)) => Ok(Meta::default()),
            Err(e) => Err(e.into()),
        }
    }
}

/// The rocklog entry carrying an openraft `entry` at `index` of `term`: the whole entry
/// (leader id included) is the payload.
pub(crate) fn encode_entry<E: Serialize>(index: u64, term: u64, entry: &E) -> Result<Entry, Failure> {
    Ok(Entry::new(index, term, rmp_serde::to_vec_named(entry)?))
}

/// The openraft entry stored in `entry`, checked against the index and term rocklog
/// filed it under; `id_of` gives an openraft entry's index and rocklog term.
pub(crate) fn decode_entry<E: DeserializeOwned>(
    entry: &Entry,
    id_of: impl Fn(&E) -> (u64, Option<u64>),
) -> Result<E, Failure> {
    let decoded: E = rmp_serde::from_slice(&entry.payload)?;
    match id_of(&decoded) {
        (index, Some(term)) if index == entry.index && term == entry.term => Ok(decoded),
        (index, term) => Err(Failure::Refused(format!(
            "rocklog entry {}@{} holds openraft entry {index}@{}: the log is not openraft's",
            entry.index,
            entry.term,
            term.map_or_else(|| "?".to_owned(), |t| t.to_string()),
        ))),
    }
}

/// `range` as `[lo, hi)`; `hi` is `None` for "to the end". `None` for an empty range.
pub(crate) fn half_open(range: &impl RangeBounds<u64>) -> Option<(u64, Option<u64>)> {
    let lo = match range.start_bound() {
        Bound::Included(&i) => i,
        Bound::Excluded(&i) => i.checked_add(1)?,
        Bound::Unbounded => 0,
    };
    let hi = match range.end_bound() {
        Bound::Included(&i) => i.checked_add(1),
        Bound::Excluded(&i) => Some(i),
        Bound::Unbounded => None,
    };
    Some((lo, hi))
}

/// One openraft log on one rocklog [`Group`], in rocklog's terms: what both adapters'
/// log stores and readers do, given openraft's purged log id as a rocklog [`LogId`]
/// (its term and index). Cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct GroupLog {
    group: Group,
    max_read_bytes: u64,
}

impl GroupLog {
    pub(crate) fn new(group: Group) -> Self {
        GroupLog { group, max_read_bytes: DEFAULT_MAX_READ_BYTES }
    }

    pub(crate) fn group(&self) -> &Group {
        &self.group
    }

    pub(crate) fn max_read_bytes(&self) -> u64 {
        self.max_read_bytes
    }

    pub(crate) fn set_max_read_bytes(&mut self, max_read_bytes: u64) {
        self.max_read_bytes = max_read_bytes;
    }

    /// The group's log state; a group that does not exist yet is an empty log.
    pub(crate) fn state(&self) -> Result<LogState, Failure> {
        match self.group.log_state() {
            Ok(state) => Ok(state),
            Err(Error::GroupNotFound(_)) => Ok(LogState::default()),
            Err(e) => Err(e.into()),
        }
    }

    /// The entries of `range` present in the log, in order, stopping after the byte bound
    /// when `limited` (at least one entry): openraft's "entries not found are allowed" at
    /// either end. The start is moved up to the first entry, and moved again if a purge
    /// commits between reading the log's bounds and its entries.
    pub(crate) fn read(&self, range: &impl RangeBounds<u64>, limited: bool) -> Result<Vec<Entry>, Failure> {
        let Some((lo, hi)) = half_open(range) else {
            return Ok(Vec::new());
        };
        let max_bytes = limited.then_some(self.max_read_bytes);
        let mut last_error = Error::Closed;
        for _ in 0..READ_RETRIES {
            let Some(first) = self.state()?.first_index else {
                return Ok(Vec::new());
            };
            let lo = lo.max(first);
            if hi.is_some_and(|hi| hi <= lo) {
                return Ok(Vec::new());
            }
            let read = match hi {
                Some(hi) => self.group.entries(lo..hi, max_bytes),
                None => self.group.entries(lo.., max_bytes),
            };
            match read {
                Ok(entries) => return Ok(entries),
                Err(Error::GroupNotFound(_)) => return Ok(Vec::new()),
                Err(e @ Error::Compacted { .. }) => last_error = e,
                Err(e) => return Err(e.into()),
            }
        }
        Err(last_error.into())
    }

    /// The entry at `index`, `None` when it is not in the log.
    pub(crate) fn entry(&self, index: u64) -> Result<Option<Entry>, Failure> {
        match self.group.entry(index) {
            Ok(entry) => Ok(entry),
            Err(Error::GroupNotFound(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The last entry when it lies above openraft's purged index (`None` otherwise: the
    /// log's last log id is then the purged one).
    pub(crate) fn last_entry(&self, purged: Option<u64>) -> Result<Option<Entry>, Failure> {
        let state = self.state()?;
        match (state.first_index, state.last_index()) {
            (Some(_), Some(last)) if purged.is_none_or(|p| last > p) => match self.entry(last)? {
                Some(entry) => Ok(Some(entry)),
                None => Err(Failure::Refused(format!("entry {last} vanished while it was the last one"))),
            },
            _ => Ok(None),
        }
    }

    /// Makes rocklog's log agree with openraft's saved `purged` log id: deletes the
    /// entries up to it unless rocklog's boundary is already there (or above). The
    /// boundary takes the term of the entry at that index when there is one, so it never
    /// conflicts with it.
    pub(crate) async fn apply_purge(&self, purged: Option<LogId>) -> Result<(), Failure> {
        let Some(purged) = purged else {
            return Ok(());
        };
        let state = self.state()?;
        if state.purged.is_some_and(|b| b.index >= purged.index) {
            return Ok(());
        }
        let term = if state.contains(purged.index) { self.group.term(purged.index)? } else { None };
        self.group.purge(LogId::new(term.unwrap_or(purged.term), purged.index)).await?;
        Ok(())
    }

    /// Clears rocklog's log (every entry and its boundary), then restores the boundary of
    /// openraft's `purged` log id.
    async fn clear(&self, purged: Option<LogId>) -> Result<(), Failure> {
        self.group.reset().await?;
        self.apply_purge(purged).await
    }

    /// Makes rocklog accept entries starting at `first` (above openraft's purged index) of
    /// `term` where openraft's log allows them but rocklog's rules would not: a log that
    /// does not start at 0 or 1, or a restart below a boundary the adapter itself set for
    /// such a log.
    async fn make_room(&self, purged: Option<LogId>, first: u64, term: u64) -> Result<(), Failure> {
        let mut state = self.state()?;
        if state.purged.is_some_and(|b| first <= b.index) {
            // The boundary is the adapter's own (above openraft's purged id), and every
            // entry lies above it: they are all replaced.
            self.clear(purged).await?;
            state = self.state()?;
        }
        if state.is_empty() {
            let start_ok = match state.next_index() {
                Some(next) => first == next,
                None => first <= 1,
            };
            if !start_ok {
                self.group.purge(LogId::new(term, first.saturating_sub(1))).await?;
            }
        }
        Ok(())
    }

    /// Appends `entries`, leaving out those at or below openraft's `purged` index: they are
    /// covered by the snapshot the purge followed, and openraft reads nothing there.
    /// Returns once they are readable; `on_durable` hears, from rocklog's writer thread,
    /// when the group commit holding them is fsynced. It is dropped without a call when
    /// this fails.
    pub(crate) async fn append_then(
        &self,
        purged: Option<LogId>,
        mut entries: Vec<Entry>,
        on_durable: impl FnOnce(crate::error::Result<()>) + Send + 'static,
    ) -> Result<(), Failure> {
        if let Some(p) = purged {
            entries.retain(|e| e.index > p.index);
        }
        if let Some(first) = entries.first() {
            self.make_room(purged, first.index, first.term).await?;
        }
        // Even with nothing left to write, the append goes through the writer: callbacks
        // must come in submission order (openraft takes an `Ok` as "everything before
        // this is durable too").
        self.group.append_then(&entries, on_durable).await?;
        Ok(())
    }

    /// Deletes the entries from `from` on; returns once durable.
    ///
    /// Fails when `from` is at or below openraft's `purged` index.
    pub(crate) async fn truncate(&self, purged: Option<LogId>, from: u64) -> Result<(), Failure> {
        if let Some(p) = purged.filter(|p| from <= p.index) {
            return Err(Failure::Refused(format!(
                "truncate from {from}, at or below the purged index {}",
                p.index
            )));
        }
        if self.state()?.purged.is_some_and(|b| from <= b.index) {
            // Below a boundary the adapter set for a log not starting at 0 or 1.
            return self.clear(purged).await;
        }
        match self.group.truncate(from).await {
            Ok(()) | Err(Error::GroupNotFound(_)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Saves `meta` as the group's metadata record; returns once durable.
    pub(crate) async fn save_meta<V, L>(&self, meta: &Meta<V, L>) -> Result<(), Failure>
    where
        V: Serialize + DeserializeOwned,
        L: Serialize + DeserializeOwned,
    {
        self.group.save_metadata(meta.encode()?).await?;
        Ok(())
    }
}

/// What both adapters' codec tests put in their entries.
#[cfg(test)]
pub(crate) mod test_payload {
    #![allow(clippy::expect_used)]

    use serde::{Deserialize, Serialize};

    /// A user type that only a self-describing format decodes.
    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    #[serde(untagged)]
    pub(crate) enum Request {
        Set {
            key: String,
            #[serde(skip_serializing_if = "Option::is_none", default)]
            value: Option<String>,
        },
        Raw(Vec<u8>),
    }

    /// Encodes and decodes each of `entries`: rocklog files it under `index_term`, and it
    /// comes back whole (its `Debug` form: log id, leader id and payload).
    pub(crate) fn assert_round_trips<E: std::fmt::Debug>(
        entries: impl IntoIterator<Item = E>,
        index_term: impl Fn(&E) -> (u64, u64),
        encode: impl Fn(&E) -> Result<crate::records::Entry, super::Failure>,
        decode: impl Fn(&crate::records::Entry) -> Result<E, super::Failure>,
    ) {
        for entry in entries {
            let stored = encode(&entry).expect("encodes");
            assert_eq!((stored.index, stored.term), index_term(&entry));
            let back = decode(&stored).expect("decodes");
            assert_eq!(format!("{back:?}"), format!("{entry:?}"));
        }
    }

    // openraft 0.10 asks application data to be `Display`.
    impl std::fmt::Display for Request {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "{self:?}")
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn ranges_become_half_open() {
        assert_eq!(half_open(&(3..7)), Some((3, Some(7))));
        assert_eq!(half_open(&(3..=7)), Some((3, Some(8))));
        assert_eq!(half_open(&(..)), Some((0, None)));
        assert_eq!(half_open(&(5..=u64::MAX)), Some((5, None)));
        let excluded = (std::ops::Bound::Excluded(u64::MAX), std::ops::Bound::Unbounded);
        assert_eq!(half_open(&excluded), None);
    }

    #[test]
    fn a_rocklog_error_stays_inside_the_io_error() {
        let io: std::io::Error = Failure::Rocklog(Error::GroupNotFound(7)).into();
        assert_eq!(io.kind(), std::io::ErrorKind::Other);
        let inner = io.get_ref().and_then(|e| e.downcast_ref::<Error>());
        assert!(matches!(inner, Some(Error::GroupNotFound(7))), "{io:?}");
        let refused: std::io::Error = Failure::Refused("no".into()).into();
        assert_eq!(refused.kind(), std::io::ErrorKind::InvalidInput);
    }

    #[test]
    fn metadata_with_missing_fields_defaults_and_garbage_is_an_error() {
        type M = Meta<u8, u64>;
        let meta = M { vote: Some(3), committed: Some(40), purged: Some(30) };
        let bytes = meta.encode().unwrap();
        assert_eq!(rmp_serde::from_slice::<M>(&bytes).unwrap(), meta);
        let empty = rmp_serde::to_vec_named(&std::collections::BTreeMap::<String, u8>::new()).unwrap();
        assert_eq!(rmp_serde::from_slice::<M>(&empty).unwrap(), M::default());
        assert!(rmp_serde::from_slice::<M>(&[0xC1]).is_err());
    }

    #[test]
    fn an_entry_filed_under_another_index_or_term_is_refused() {
        let id_of = |e: &(u64, u64)| (e.0, Some(e.1));
        let mut stored = encode_entry(5, 2, &(5u64, 2u64)).unwrap();
        assert_eq!(decode_entry(&stored, id_of).unwrap(), (5, 2));
        stored.index = 6;
        assert!(matches!(decode_entry(&stored, id_of), Err(Failure::Refused(_))));
        stored.index = 5;
        stored.term = 3;
        assert!(matches!(decode_entry(&stored, id_of), Err(Failure::Refused(_))));
        stored.payload = vec![0xC1].into();
        assert!(matches!(decode_entry(&stored, id_of), Err(Failure::Decode(_))), "garbage is an error");
    }
}
