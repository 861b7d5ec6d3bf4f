//! The adapter tests both openraft adapters (0.9 and 0.10) pass, written once.
//!
//! `openraft_cases!()` expands them in `tests/openraft_suite.rs` and
//! `tests/openraft10_suite.rs`; each file's scope provides its version's names:
//! `Tc` (its type config), `LogStorage` (the rocklog adapter), `LogState`, the storage
//! and reader traits, and the helpers `open(&TempDir, group)`, `ids(&mut log)`,
//! `state(&mut log)`, `read_vote(&mut log)`, `log_id(term, node, index)`,
//! `blank(term, node, index)`, `normal(term, node, index)`,
//! `membership(term, node, index)` and `committed_vote(term, node)`.

macro_rules! openraft_cases {
    () => {
        #[tokio::test]
        async fn entries_vote_committed_and_purge_survive_a_restart() {
            let dir = tempfile::tempdir().unwrap();
            let (store, mut log) = open(&dir, 9).await;
            log.blocking_append([blank(0, 0, 0), membership(1, 2, 1)]).await.unwrap();
            log.blocking_append((2..20).map(|i| normal(1, 2, i))).await.unwrap();
            log.save_vote(&committed_vote(1, 2)).await.unwrap();
            log.save_committed(Some(log_id(1, 2, 15))).await.unwrap();
            log.purge(log_id(1, 2, 4)).await.unwrap();
            let before = ids(&mut log).await;
            store.shutdown().await.unwrap();
            drop(log);

            let (store, mut log) = open(&dir, 9).await;
            assert_eq!(ids(&mut log).await, before);
            assert_eq!(before.first(), Some(&log_id(1, 2, 5)));
            assert_eq!(read_vote(&mut log).await, Some(committed_vote(1, 2)));
            assert_eq!(log.read_committed().await.unwrap(), Some(log_id(1, 2, 15)));
            assert_eq!(
                state(&mut log).await,
                LogState { last_purged_log_id: Some(log_id(1, 2, 4)), last_log_id: Some(log_id(1, 2, 19)) }
            );
            // The entries come back whole: payloads included.
            let mut reader = log.get_log_reader().await;
            let e = reader.try_get_log_entries(7..8).await.unwrap();
            assert_eq!(format!("{:?}", e[0].payload), format!("{:?}", normal(1, 2, 7).payload));
            store.shutdown().await.unwrap();
        }

        #[tokio::test]
        async fn purge_past_the_end_leaves_an_empty_log_that_continues_after_it() {
            let dir = tempfile::tempdir().unwrap();
            let (store, mut log) = open(&dir, 1).await;
            log.blocking_append((0..5).map(|i| blank(1, 3, i))).await.unwrap();
            // As when a follower installs a snapshot ahead of its log.
            log.purge(log_id(4, 2, 100)).await.unwrap();
            let empty_at_100 = LogState {
                last_purged_log_id: Some(log_id(4, 2, 100)),
                last_log_id: Some(log_id(4, 2, 100)),
            };
            assert_eq!(state(&mut log).await, empty_at_100);
            assert!(ids(&mut log).await.is_empty());
            // Entries at or below the purged index are covered by the snapshot: left out.
            log.blocking_append([blank(4, 2, 99), blank(4, 2, 100)]).await.unwrap();
            assert_eq!(state(&mut log).await, empty_at_100);
            store.shutdown().await.unwrap();
            drop(log);

            let (store, mut log) = open(&dir, 1).await;
            assert_eq!(state(&mut log).await, empty_at_100);
            log.blocking_append([blank(5, 1, 101), blank(5, 1, 102)]).await.unwrap();
            assert_eq!(ids(&mut log).await, vec![log_id(5, 1, 101), log_id(5, 1, 102)]);
            assert_eq!(store.group(1).first_index().unwrap(), Some(101));
            store.shutdown().await.unwrap();
        }

        #[tokio::test]
        async fn an_interrupted_purge_is_finished_on_open() {
            let dir = tempfile::tempdir().unwrap();
            let (store, mut a) = open(&dir, 1).await;
            let mut b = LogStorage::<Tc>::open(store.group(2)).await.unwrap();
            a.blocking_append((0..10).map(|i| blank(1, 1, i))).await.unwrap();
            b.blocking_append((0..10).map(|i| blank(1, 1, i))).await.unwrap();
            a.purge(log_id(1, 1, 5)).await.unwrap();
            // Group 2 now looks like a crash between saving the purged log id (first) and
            // deleting the entries (second).
            let metadata = store.group(1).metadata().unwrap().unwrap();
            store.group(2).save_metadata(metadata).await.unwrap();
            assert_eq!(store.group(2).first_index().unwrap(), Some(0));
            drop(b);

            let mut b = LogStorage::<Tc>::open(store.group(2)).await.unwrap();
            assert_eq!(store.group(2).first_index().unwrap(), Some(6), "open finished the purge");
            assert_eq!(state(&mut b).await, state(&mut a).await);
            assert_eq!(ids(&mut b).await, ids(&mut a).await);
            store.shutdown().await.unwrap();
        }

        #[tokio::test]
        async fn replication_reads_are_bounded_but_never_empty() {
            let dir = tempfile::tempdir().unwrap();
            let store = LogStore::start(Config::new(dir.path())).unwrap();
            let mut log = LogStorage::<Tc>::open(store.group(1)).await.unwrap().with_max_read_bytes(1);
            log.blocking_append((1..50).map(|i| normal(1, 1, i))).await.unwrap();
            let mut reader = log.get_log_reader().await;
            let got = reader.limited_get_log_entries(10, 40).await.unwrap();
            assert_eq!(got.iter().map(|e| e.log_id.index).collect::<Vec<_>>(), vec![10]);
            assert_eq!(reader.try_get_log_entries(10..40).await.unwrap().len(), 30);
            assert_eq!(reader.try_get_log_entries(45..).await.unwrap().len(), 5);
            assert!(reader.try_get_log_entries(60..70).await.unwrap().is_empty());
            store.shutdown().await.unwrap();
        }

        #[tokio::test]
        async fn metadata_that_is_not_the_adapters_is_refused() {
            let dir = tempfile::tempdir().unwrap();
            let store = LogStore::start(Config::new(dir.path())).unwrap();
            store.group(1).save_metadata(&[0xC1u8][..]).await.unwrap();
            assert!(LogStorage::<Tc>::open(store.group(1)).await.is_err());
            store.shutdown().await.unwrap();
        }
    };
}
