//! The poisoned state of an engine.
//!
//! Once a write or an fsync fails, every later write is refused until the engine is
//! reopened. Retrying is not safe: after a failed fsync the kernel may have dropped the
//! dirty pages and marked them clean, so a second fsync can report success for data that
//! is gone (the "fsyncgate" finding). Reads keep working.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

use crate::error::{Error, Result};

/// Why the engine is poisoned, once it is. Checked on every write, so the flag is an
/// atomic and the reason is read only once it is set.
#[derive(Debug, Default)]
pub(crate) struct Poison {
    poisoned: AtomicBool,
    reason: Mutex<Option<String>>,
}

impl Poison {
    /// Poisons for good; the first reason is kept.
    pub fn set(&self, reason: String) {
        let mut slot = self.reason.lock().unwrap_or_else(PoisonError::into_inner);
        slot.get_or_insert(reason);
        self.poisoned.store(true, Ordering::Release);
    }

    /// `Err(Poisoned)` once [`Poison::set`] was called.
    pub fn check(&self) -> Result<()> {
        if !self.poisoned.load(Ordering::Acquire) {
            return Ok(());
        }
        let reason = self.reason.lock().unwrap_or_else(PoisonError::into_inner).clone().unwrap_or_default();
        Err(Error::Poisoned(reason))
    }
}
