//! `Group::append_then`: entries readable on return, durability reported by callback, in
//! order, and never lost track of — by refusals, failures, flushes or shutdown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Outcomes, ents, ids, open};
use rocklog::{Entry, Error};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_are_readable_on_return_and_reported_durable_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let group = store.group(1);
    let seen = Outcomes::default();
    for i in 1..=200u64 {
        group.append_then(&[Entry::new(i, 1, format!("e{i}"))], seen.callback(i)).await.unwrap();
        // Readable at once, whether or not its fsync has run yet.
        assert_eq!(group.last_index().unwrap(), Some(i));
        assert_eq!(group.entry(i).unwrap().unwrap().payload, format!("e{i}"));
    }
    // A flush is a barrier: it returns only after every earlier append is durable.
    store.flush().await.unwrap();
    let got = seen.get();
    assert_eq!(got.len(), 200, "every callback ran before the flush returned");
    let tags: Vec<u64> = got.iter().map(|(t, _)| *t).collect();
    assert_eq!(tags, (1..=200).collect::<Vec<_>>(), "callbacks run in append order");
    assert!(got.iter().all(|(_, r)| r.is_ok()));
    let stats = store.stats();
    assert!(stats.syncs >= 1 && stats.syncs <= 200, "{stats:?}");
    store.shutdown().await.unwrap();

    // Everything reported durable is there after a reopen.
    let store = open(dir.path());
    assert_eq!(ids(&store, 1), (1..=200).map(|i| (i, 1)).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_refused_append_fails_on_return_and_its_callback_never_runs() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let group = store.group(1);
    let seen = Outcomes::default();
    group.append_then(&ents(1..4, 1), seen.callback(1)).await.unwrap();
    let gap = group.append_then(&ents(9..10, 1), seen.callback(2)).await;
    assert!(matches!(gap, Err(Error::Gap { .. })), "{gap:?}");
    let back = group.append_then(&ents(4..5, 0), seen.callback(3)).await;
    assert!(matches!(back, Err(Error::TermRegression { .. })), "{back:?}");
    store.sync().await.unwrap();
    assert_eq!(seen.get(), vec![(1, Ok(()))]);
    assert_eq!(group.last_index().unwrap(), Some(3));
    store.shutdown().await.unwrap();
}

#[tokio::test]
async fn plain_and_pipelined_writes_mix_and_all_become_durable() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let seen = Outcomes::default();
    let mut tasks = Vec::new();
    for g in 1..=8u64 {
        let store = store.clone();
        let seen = seen.clone();
        tasks.push(tokio::spawn(async move {
            let group = store.group(g);
            for i in 1..=25u64 {
                let e = [Entry::new(i, 1, format!("g{g} e{i}"))];
                if g % 2 == 0 {
                    group.append_then(&e, seen.callback(g * 100 + i)).await.unwrap();
                } else {
                    group.append(&e).await.unwrap();
                }
            }
            // A plain write after pipelined ones is answered only once durable, and by
            // then the pipelined ones before it are too.
            group.save_hard_state(rocklog::HardState { term: 1, vote: None, commit: 25 }).await.unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let got = seen.get();
    assert_eq!(
        got.len(),
        4 * 25,
        "every pipelined append reported before its group's next plain write returned"
    );
    assert!(got.iter().all(|(_, r)| r.is_ok()));
    store.shutdown().await.unwrap();
    let store = open(dir.path());
    for g in 1..=8 {
        assert_eq!(ids(&store, g).len(), 25);
        assert_eq!(store.group(g).hard_state().unwrap().unwrap().commit, 25);
    }
}

#[tokio::test]
async fn shutdown_reports_every_pipelined_append_before_it_returns() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let seen = Outcomes::default();
    let group = store.group(7);
    for i in 1..=50u64 {
        group.append_then(&[Entry::new(i, 2, "x")], seen.callback(i)).await.unwrap();
    }
    store.shutdown().await.unwrap();
    let got = seen.get();
    assert_eq!(got.len(), 50);
    assert!(got.iter().all(|(_, r)| r.is_ok()));
    let after = group.append_then(&[Entry::new(51, 2, "x")], seen.callback(51)).await;
    assert!(matches!(after, Err(Error::Closed)), "{after:?}");
    assert_eq!(seen.get().len(), 50, "a refused append's callback never runs");
}
