//! A group's opaque metadata record (`Group::save_metadata` / `Group::metadata`): durable,
//! ordered with the group's other writes, kept by `reset`, deleted by `remove`, and
//! invisible to the offline checker's complaints.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{ents, open};
use rocklog::{Error, HardState, LogId};

#[tokio::test]
async fn metadata_is_saved_replaced_and_survives_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let g = store.group(1);
    assert!(matches!(g.metadata(), Err(Error::GroupNotFound(1))));

    g.save_metadata(&b"first"[..]).await.unwrap();
    assert!(g.exists(), "saving metadata creates the group");
    assert_eq!(g.metadata().unwrap().as_deref(), Some(&b"first"[..]));
    g.save_metadata(b"second".to_vec()).await.unwrap();
    assert_eq!(g.metadata().unwrap().as_deref(), Some(&b"second"[..]));
    g.append(&ents(1..4, 1)).await.unwrap();
    store.group(2).append(&ents(1..2, 1)).await.unwrap();
    assert_eq!(store.group(2).metadata().unwrap(), None, "a group without metadata reads None");
    store.shutdown().await.unwrap();

    let store = open(dir.path());
    let g = store.group(1);
    assert_eq!(g.metadata().unwrap().as_deref(), Some(&b"second"[..]));
    assert_eq!(g.last_log_id().unwrap(), Some(LogId::new(1, 3)));
    assert_eq!(store.group(2).metadata().unwrap(), None);
}

#[tokio::test]
async fn reset_keeps_metadata_and_remove_deletes_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let g = store.group(7);
    g.append(&ents(1..6, 1)).await.unwrap();
    g.save_hard_state(HardState { term: 1, vote: Some(2), commit: 3 }).await.unwrap();
    g.save_metadata(&b"meta"[..]).await.unwrap();

    g.reset().await.unwrap();
    assert_eq!(g.last_log_id().unwrap(), None);
    assert_eq!(g.metadata().unwrap().as_deref(), Some(&b"meta"[..]));

    g.remove().await.unwrap();
    assert!(matches!(g.metadata(), Err(Error::GroupNotFound(7))));
    g.create().await.unwrap();
    assert_eq!(g.metadata().unwrap(), None, "a re-created group starts without metadata");
    store.shutdown().await.unwrap();

    let store = open(dir.path());
    assert_eq!(store.group(7).metadata().unwrap(), None, "remove deleted the record on disk");
}

#[tokio::test]
async fn metadata_writes_apply_in_order_with_the_groups_other_writes() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let g = store.group(3);
    // Sent without waiting in between: they may share a batch, and apply in order.
    let entries = ents(1..3, 1);
    let (a, b, c) =
        tokio::join!(g.save_metadata(&b"one"[..]), g.append(&entries), g.save_metadata(&b"two"[..]));
    a.unwrap();
    b.unwrap();
    c.unwrap();
    assert_eq!(g.metadata().unwrap().as_deref(), Some(&b"two"[..]));
    assert_eq!(store.stats().rejected, 0);
}

#[tokio::test]
async fn the_offline_checker_accepts_metadata_records() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store.group(1).append(&ents(1..3, 1)).await.unwrap();
    store.group(1).save_metadata(vec![0xFF; 64]).await.unwrap();
    store.shutdown().await.unwrap();

    let offline = rocklog::offline::OfflineLog::open(dir.path()).unwrap();
    let report = offline.check().unwrap();
    assert!(report.findings.is_empty(), "unexpected findings: {:?}", report.findings);
}
