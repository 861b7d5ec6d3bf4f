//! Answering callers, in one place: where a command's outcome goes ([`Reply`]), the
//! durable-outcome callback of a pipelined append ([`OnDurable`]), and one command's
//! outcome on its way back ([`Outcome`]), from the commit or from the syncer.
//!
//! A dropped receiver means the caller went away: the write happened anyway, and nobody
//! is told. Every path that gives up on a command (a failed batch, a stopped writer)
//! answers it through here, so no caller waits forever.

use std::time::Instant;

use tokio::sync::oneshot;

use crate::error::Result;
use crate::metrics::Metrics;

/// Where the writer sends a command's outcome, after the batch holding it is durable.
#[derive(Debug)]
pub(crate) enum Reply {
    /// A handle awaiting the outcome.
    Channel(oneshot::Sender<Result<()>>),
    /// A callback the writer thread calls with the outcome ([`Group::append_then`]).
    ///
    /// [`Group::append_then`]: crate::Group::append_then
    Callback(OnDurable),
}

impl Reply {
    /// Delivers the outcome. A dropped receiver means the caller went away; the write
    /// happened anyway.
    pub fn send(self, result: Result<()>) {
        match self {
            Reply::Channel(tx) => {
                let _ = tx.send(result);
            }
            Reply::Callback(mut cb) => {
                if let Some(f) = cb.f.take() {
                    f(result);
                }
            }
        }
    }

    /// From now on the caller has been told the command is visible, so the callback must
    /// run whatever happens: dropping it unanswered reports [`Error::Closed`](crate::Error::Closed).
    pub fn arm(&mut self) {
        if let Reply::Callback(cb) = self {
            cb.armed = true;
        }
    }
}

/// The durable-outcome callback of a pipelined append. Until armed (the append was
/// accepted and is visible) it is dropped silently, because the caller learns the refusal
/// from the visible reply; once armed, dropping it unanswered (the writer died) calls it
/// with `Closed`.
pub(crate) struct OnDurable {
    f: Option<Box<dyn FnOnce(Result<()>) + Send>>,
    armed: bool,
}

impl OnDurable {
    pub fn new(f: impl FnOnce(Result<()>) + Send + 'static) -> Self {
        OnDurable { f: Some(Box::new(f)), armed: false }
    }
}

impl std::fmt::Debug for OnDurable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnDurable").field("armed", &self.armed).finish_non_exhaustive()
    }
}

impl Drop for OnDurable {
    fn drop(&mut self) {
        if self.armed
            && let Some(f) = self.f.take()
        {
            f(Err(crate::Error::Closed));
        }
    }
}

/// One command's outcome on its way back to its caller.
pub(crate) struct Outcome {
    pub reply: Reply,
    pub visible: Option<oneshot::Sender<Result<()>>>,
    pub result: Result<()>,
    pub enqueued: Option<Instant>,
}

impl Outcome {
    /// Tells a pipelined caller its accepted command is visible, and arms its durable
    /// callback.
    pub fn tell_visible(&mut self) {
        if self.result.is_ok()
            && let Some(v) = self.visible.take()
        {
            self.reply.arm();
            let _ = v.send(Ok(()));
        }
    }

    /// Delivers the final outcome. A pipelined caller not told "visible" yet hears it now
    /// (or hears the error: a refused command's callback is never called).
    pub fn finish(mut self, metrics: &Metrics, now: Instant) {
        if let Some(t) = self.enqueued {
            metrics.write_latency.record(now.duration_since(t));
        }
        if self.visible.is_some() {
            match self.result {
                Ok(()) => self.tell_visible(),
                Err(e) => {
                    if let Some(v) = self.visible.take() {
                        let _ = v.send(Err(e));
                    }
                    return;
                }
            }
        }
        self.reply.send(self.result);
    }
}

/// Answers a command whose batch never reached RocksDB (the engine closed, or the batch
/// could not be staged). A pipelined caller hears the failure on its `visible` reply; its
/// callback, not armed yet, is dropped uncalled.
pub(crate) fn refuse(reply: Reply, visible: Option<oneshot::Sender<Result<()>>>, result: Result<()>) {
    match visible {
        Some(visible) => {
            let _ = visible.send(result);
        }
        None => reply.send(result),
    }
}
