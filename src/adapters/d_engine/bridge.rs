//! Waiting for a rocklog write from d-engine's synchronous calls.

use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};

use tokio::runtime::{Handle, RuntimeFlavor};

/// Runs `future` to completion on the calling thread, inside or outside a tokio runtime.
///
/// Sound only for futures that need no runtime to make progress: rocklog's write futures
/// either commit on the calling thread (`Config::inline_commits`; already inside
/// `block_in_place` here, so tokio lets them nest) or wait on the writer's OS thread
/// through channels, never on a timer, socket or task of the caller's runtime. On a
/// multi-threaded runtime the wait is wrapped in [`tokio::task::block_in_place`] so the
/// worker's other tasks are moved off the blocked thread. The future runs [`unconstrained`](tokio::task::coop::unconstrained): on a
/// runtime thread, tokio's cooperative budget belongs to the task that called us and,
/// once spent, would make every poll return `Pending` until that task yields, which it
/// cannot while it waits here.
pub(crate) fn wait<F: Future>(future: F) -> F::Output {
    let future = tokio::task::coop::unconstrained(future);
    match Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(|| park_on(future))
        }
        // A current-thread runtime (block_in_place would panic there) or none at all: the
        // thread blocks for the write, as it would on a synchronous RocksDB write.
        _ => park_on(future),
    }
}

/// Wakes the thread parked in [`park_on`].
struct Unpark(Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// A minimal executor: poll, park until woken, poll again. A spurious unpark only costs
/// one more poll.
fn park_on<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let waker = Waker::from(Arc::new(Unpark(thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        thread::park();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A future completed by another OS thread, like a rocklog write answered by the writer.
    async fn answered_by_a_thread() -> u32 {
        let (tx, rx) = tokio::sync::oneshot::channel();
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(5));
            let _ = tx.send(7);
        });
        rx.await.unwrap_or(0)
    }

    #[test]
    fn waits_outside_any_runtime() {
        assert_eq!(wait(answered_by_a_thread()), 7);
    }

    #[test]
    fn waits_on_a_current_thread_runtime() -> std::io::Result<()> {
        let rt = tokio::runtime::Builder::new_current_thread().build()?;
        assert_eq!(rt.block_on(async { wait(answered_by_a_thread()) }), 7);
        Ok(())
    }

    #[test]
    fn waits_on_a_multi_thread_worker_and_in_spawn_blocking() -> Result<(), Box<dyn std::error::Error>> {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build()?;
        let on_worker = rt.block_on(async { tokio::spawn(async { wait(answered_by_a_thread()) }).await })?;
        assert_eq!(on_worker, 7);
        let in_block_on = rt.block_on(async { wait(answered_by_a_thread()) });
        assert_eq!(in_block_on, 7);
        let blocking =
            rt.block_on(async { tokio::task::spawn_blocking(|| wait(answered_by_a_thread())).await })?;
        assert_eq!(blocking, 7);
        Ok(())
    }

    #[test]
    fn waits_even_when_the_calling_task_spent_its_budget() -> std::io::Result<()> {
        let rt = tokio::runtime::Builder::new_current_thread().build()?;
        let got = rt.block_on(std::future::poll_fn(|cx| {
            // Spend the task's cooperative budget without yielding: every further poll of
            // a tokio channel in this task now returns `Pending` until the task yields.
            while tokio::task::coop::has_budget_remaining() {
                let (tx, mut rx) = tokio::sync::oneshot::channel::<()>();
                let _ = tx.send(());
                let _ = std::pin::Pin::new(&mut rx).poll(cx);
            }
            Poll::Ready(wait(answered_by_a_thread()))
        }));
        assert_eq!(got, 7);
        Ok(())
    }
}
