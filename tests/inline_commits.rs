//! Inline commits (`Config::inline_commits`): a lone caller whose writer is idle runs the
//! commit on its own thread. Blocking calls do so on theirs; awaited async writes on a
//! multi-threaded tokio runtime do so inside `block_in_place`, which moves the worker's
//! other tasks to another thread first. Neither ever overtakes a command sent before it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common::{ents, ids, open};
use rocklog::{Config, LogStore};
use tokio::runtime::Runtime;

/// How a test's appends are made.
#[derive(Clone, Copy, Debug)]
enum Caller {
    /// `group.blocking().append(..)` on the test's thread.
    Blocking,
    /// `group.append(..).await` in a current-thread runtime's `block_on`.
    CurrentThread,
    /// `group.append(..).await` in a multi-threaded runtime's `block_on`.
    MultiThread,
}

fn multi_thread(workers: usize) -> Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(workers).enable_all().build().unwrap()
}

/// A lone caller commits on its own thread while the writer idles: each append is one
/// commit and one fsync, with no trip through the writer. The controls: with the setting
/// off, with a linger, and for async appends on a current-thread runtime (where
/// `block_in_place` is refused), no commit runs inline.
#[test]
fn a_lone_caller_commits_on_its_own_thread() {
    const APPENDS: u64 = 50;
    let inline_commits = |config: Config, caller: Caller| {
        let dir = tempfile::tempdir().unwrap();
        let store = LogStore::start(Config { path: dir.path().into(), ..config }).unwrap();
        let g = store.group(1);
        // The first call may come before the writer thread runs: it goes through the
        // channel, as every call does until then.
        g.blocking().append(&ents(1..2, 1)).unwrap();
        let before = store.stats();
        let runtime = match caller {
            Caller::MultiThread => multi_thread(2),
            _ => tokio::runtime::Builder::new_current_thread().build().unwrap(),
        };
        for i in 2..=APPENDS {
            match caller {
                Caller::Blocking => g.blocking().append(&ents(i..i + 1, 1)).unwrap(),
                _ => runtime.block_on(g.append(&ents(i..i + 1, 1))).unwrap(),
            }
        }
        let after = store.stats();
        assert_eq!(after.commits - before.commits, APPENDS - 1);
        assert_eq!(after.syncs - before.syncs, APPENDS - 1, "one fsync per lone append");
        drop((g, store));
        assert_eq!(ids(&open(dir.path()), 1), (1..=APPENDS).map(|i| (i, 1)).collect::<Vec<_>>());
        after.inline_commits - before.inline_commits
    };
    for caller in [Caller::Blocking, Caller::MultiThread] {
        assert_eq!(inline_commits(Config::default(), caller), APPENDS - 1, "{caller:?}");
        assert_eq!(inline_commits(Config { inline_commits: false, ..Config::default() }, caller), 0);
        let linger = Config { linger: Duration::from_micros(100), ..Config::default() };
        assert_eq!(inline_commits(linger, caller), 0, "a linger asks for batches on the writer");
    }
    assert_eq!(inline_commits(Config::default(), Caller::CurrentThread), 0, "no block_in_place there");
}

/// An async append committing inline holds its task, never the runtime: on a runtime
/// with one worker, a task that appends in a loop without ever yielding leaves the
/// worker's other task running, because each commit runs in `block_in_place`. The
/// control: the same loop through the blocking API, committing inline on the worker
/// itself, starves the other task completely.
#[test]
fn an_async_inline_commit_leaves_the_workers_other_tasks_running() {
    const CONTROL_APPENDS: u64 = 200;
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store.group(1).blocking().append(&ents(1..2, 1)).unwrap();
    let runtime = multi_thread(1);
    // Appends to group 1 from `next` on, until the other task has run `ticks` times or
    // `limit` appends are made; returns how often it ran meanwhile, and the appends.
    let run = |blocking: bool, next: u64, ticks: u64, limit: u64| {
        let g = store.group(1);
        runtime.block_on(async move {
            let count = Arc::new(AtomicU64::new(0));
            let stop = Arc::new(AtomicBool::new(false));
            let other = tokio::spawn({
                let (count, stop) = (Arc::clone(&count), Arc::clone(&stop));
                async move {
                    while !stop.load(Ordering::SeqCst) {
                        count.fetch_add(1, Ordering::SeqCst);
                        tokio::task::yield_now().await;
                    }
                }
            });
            let appender = tokio::spawn(async move {
                let start = count.load(Ordering::SeqCst);
                let mut i = next;
                while i < next + limit && count.load(Ordering::SeqCst) - start < ticks {
                    let entries = ents(i..i + 1, 1);
                    if blocking { g.blocking().append(&entries) } else { g.append(&entries).await }.unwrap();
                    i += 1;
                }
                let ran = count.load(Ordering::SeqCst) - start;
                stop.store(true, Ordering::SeqCst);
                (ran, i - next)
            });
            let outcome = appender.await.unwrap();
            other.await.unwrap();
            outcome
        })
    };
    let inline = store.stats().inline_commits;
    let (ran, appends) = run(false, 2, 100, 100_000);
    assert!(ran >= 100, "the other task ran {ran} times during {appends} async appends");
    assert!(store.stats().inline_commits - inline >= appends - 1, "the async appends committed inline");

    let (ran, appends) = run(true, 2 + appends, u64::MAX, CONTROL_APPENDS);
    assert_eq!(appends, CONTROL_APPENDS);
    assert_eq!(ran, 0, "control: blocking appends on the worker starve its other task");
}

/// A lone call never overtakes a command sent before it that the writer has drained but
/// not committed yet: it goes through the channel, behind that command. Were it committed
/// inline, its append (index 2) would find a gap before it and be refused. The control:
/// with nothing held or queued, the same caller's lone appends commit inline again.
#[test]
fn a_lone_call_never_overtakes_a_drained_command() {
    for caller in [Caller::Blocking, Caller::MultiThread] {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let g = store.group(1);
        store.group(2).blocking().append(&ents(1..2, 1)).unwrap();
        store.inject_drained_hold(Duration::from_millis(300));
        // The first append goes through the writer: async, on a current-thread runtime.
        let first = std::thread::spawn({
            let g = g.clone();
            move || {
                let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
                runtime.block_on(g.append(&ents(1..2, 1)))
            }
        });
        // The writer drains the first append, then holds it uncommitted for 300 ms.
        std::thread::sleep(Duration::from_millis(100));
        assert!(!g.exists(), "the first append is held, not committed");
        let inline = store.stats().inline_commits;
        let runtime = multi_thread(2);
        let append = |range: std::ops::Range<u64>| match caller {
            Caller::Blocking => g.blocking().append(&ents(range, 1)),
            _ => runtime.block_on(g.append(&ents(range, 1))),
        };
        append(2..3).unwrap();
        first.join().unwrap().unwrap();
        assert_eq!(
            store.stats().inline_commits,
            inline,
            "{caller:?}: the second append went through the writer"
        );
        assert_eq!(ids(&store, 1), vec![(1, 1), (2, 1)]);

        // Control (after one more trip through the writer, whose last batch was the
        // second append).
        store.inject_drained_hold(Duration::ZERO);
        append(3..4).unwrap();
        append(4..5).unwrap();
        assert!(store.stats().inline_commits > inline, "{caller:?}");
    }
}
