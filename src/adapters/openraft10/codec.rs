//! How the adapter turns openraft 0.10's types into rocklog records and back.
//!
//! Entries and the metadata record are MessagePack, structs as maps, exactly as in the 0.9
//! adapter (see [`crate::adapters::openraft_shared`]); only the types differ: 0.10's log id
//! carries a generic committed leader id and term, which [`LeaderTerm`] turns into
//! rocklog's `u64` term.

use ::openraft10::entry::RaftEntry;
use ::openraft10::type_config::alias::{CommittedLeaderIdOf, LogIdOf, VoteOf};
use ::openraft10::vote::{RaftTerm, leader_id_adv, leader_id_std};
use ::openraft10::{NodeId, RaftTypeConfig};

use crate::adapters::openraft_shared::{self as shared, Failure};

/// The term of an openraft 0.10 committed leader id, as rocklog's `u64` term.
///
/// openraft 0.10 makes the leader id and its term types of your `RaftTypeConfig`, and its
/// `RaftCommittedLeaderId` trait does not expose the term; rocklog files every entry under
/// its term. This trait is implemented for both leader ids openraft ships (the default
/// `leader_id_adv::LeaderId` and `leader_id_std`'s `CommittedLeaderId`) over any
/// `RaftTerm` whose [`RaftTerm::as_u64`] answers (every unsigned integer term does).
/// A custom leader id type implements it to use the adapter.
pub trait LeaderTerm {
    /// The term as a `u64`, `None` when it has no `u64` form (the adapter then refuses
    /// the entry).
    fn rocklog_term(&self) -> Option<u64>;
}

impl<T: RaftTerm, N: NodeId> LeaderTerm for leader_id_adv::LeaderId<T, N> {
    fn rocklog_term(&self) -> Option<u64> {
        self.term.as_u64()
    }
}

impl<T: RaftTerm> LeaderTerm for leader_id_std::CommittedLeaderId<T> {
    fn rocklog_term(&self) -> Option<u64> {
        self.term.as_u64()
    }
}

/// What the adapter keeps in the group's metadata record: openraft's vote, committed log
/// id and purged log id (see [`shared::Meta`]).
pub(crate) type Meta<C> = shared::Meta<VoteOf<C>, LogIdOf<C>>;

/// rocklog's term for `leader`, or the adapter's refusal.
fn term_of<L: LeaderTerm + std::fmt::Display>(leader: &L, index: u64) -> Result<u64, Failure> {
    leader
        .rocklog_term()
        .ok_or_else(|| Failure::Refused(format!("the term of log id {leader}-{index} has no u64 form")))
}

/// The rocklog entry carrying `entry`: its index, its leader's term, and the whole
/// openraft entry (leader id included) as payload.
pub(crate) fn encode_entry<C>(entry: &C::Entry) -> Result<crate::records::Entry, Failure>
where
    C: RaftTypeConfig,
    CommittedLeaderIdOf<C>: LeaderTerm,
{
    let (leader, index) = entry.log_id_parts();
    shared::encode_entry(index, term_of(leader, index)?, entry)
}

/// The openraft entry stored in `entry`, checked against the index and term rocklog
/// filed it under.
pub(crate) fn decode_entry<C>(entry: &crate::records::Entry) -> Result<C::Entry, Failure>
where
    C: RaftTypeConfig,
    CommittedLeaderIdOf<C>: LeaderTerm,
{
    shared::decode_entry(entry, |e: &C::Entry| {
        let (leader, index) = e.log_id_parts();
        (index, leader.rocklog_term())
    })
}

/// rocklog's purge boundary for openraft's purged log id: its term and index.
pub(crate) fn boundary<C>(log_id: Option<&LogIdOf<C>>) -> Result<Option<crate::records::LogId>, Failure>
where
    C: RaftTypeConfig,
    CommittedLeaderIdOf<C>: LeaderTerm,
{
    log_id.map(|id| Ok(crate::records::LogId::new(term_of(&id.leader_id, id.index)?, id.index))).transpose()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::adapters::openraft_shared::test_payload::{Request, assert_round_trips};
    use ::openraft10::type_config::alias::EntryOf;
    use ::openraft10::{Entry, EntryPayload, LogId, Membership};

    ::openraft10::declare_raft_types!(Tc: D = Request, R = ());
    ::openraft10::declare_raft_types!(
        Std: D = Request, R = (), LeaderId = leader_id_std::LeaderId<u64, u64>
    );

    fn log_id(term: u64, node: u64, index: u64) -> LogIdOf<Tc> {
        LogId::new(leader_id_adv::LeaderId { term, node_id: node }, index)
    }

    #[test]
    fn entries_round_trip_with_their_leader_id_and_untagged_payloads() {
        let entries: [Entry<_, _>; 4] = [
            Entry::new(log_id(3, 7, 10), EntryPayload::Normal(Request::Set { key: "k".into(), value: None })),
            Entry::new(log_id(3, 7, 11), EntryPayload::Normal(Request::Raw(vec![1, 2, 3]))),
            Entry::new(log_id(4, 2, 12), EntryPayload::Blank),
            Entry::new(
                log_id(4, 2, 13),
                EntryPayload::Membership(Membership::new_with_defaults(vec![[1, 2, 3].into()], [])),
            ),
        ];
        let index_term = |e: &EntryOf<Tc>| (e.log_id.index, e.log_id.leader_id.term);
        assert_round_trips(entries, index_term, encode_entry::<Tc>, decode_entry::<Tc>);
    }

    #[test]
    fn the_standard_leader_id_gives_its_term_too() {
        let id = LogId::new(leader_id_std::CommittedLeaderId::new(9), 4);
        let entry: EntryOf<Std> = Entry::new(id, EntryPayload::Blank);
        let stored = encode_entry::<Std>(&entry).unwrap();
        assert_eq!((stored.index, stored.term), (4, 9));
        assert_eq!(decode_entry::<Std>(&stored).unwrap().log_id, id);
        assert_eq!(boundary::<Std>(Some(&id)).unwrap(), Some(crate::records::LogId::new(9, 4)));
    }
}
