//! The one way wasock takes a lock.

use std::sync::{Mutex, MutexGuard};

/// Rule: a lock poisoned by a panic elsewhere still guards plain data; the host goes on.
pub(crate) fn lock<T: ?Sized>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
