//! A counting semaphore that bounds concurrent queries (`--query.max-concurrency`). Waiting respects the
//! query's deadline and cancellation flag, so a queued query cannot outlive its timeout.

use crate::QueryError;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

pub(crate) struct Gate {
    active: Mutex<usize>,
    cv: Condvar,
    max: usize,
}

pub(crate) struct Slot<'a> {
    gate: &'a Gate,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut n = self.gate.active.lock().unwrap_or_else(|e| e.into_inner());
        *n = n.saturating_sub(1);
        drop(n);
        self.gate.cv.notify_one();
    }
}

impl Gate {
    pub(crate) fn new(max: usize) -> Gate {
        Gate { active: Mutex::new(0), cv: Condvar::new(), max }
    }

    /// Waits for a free slot. Wakes at least every 50ms to look at the cancellation flag.
    pub(crate) fn acquire(&self, deadline: Option<Instant>, cancel: Option<&AtomicBool>) -> Result<Slot<'_>, QueryError> {
        let mut n = self.active.lock().unwrap_or_else(|e| e.into_inner());
        while *n >= self.max {
            if cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
                return Err(QueryError::Canceled);
            }
            let mut wait = Duration::from_millis(50);
            if let Some(d) = deadline {
                let now = Instant::now();
                if now >= d {
                    return Err(QueryError::Timeout);
                }
                wait = wait.min(d - now);
            }
            n = self.cv.wait_timeout(n, wait).unwrap_or_else(|e| e.into_inner()).0;
        }
        *n += 1;
        Ok(Slot { gate: self })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gate_bounds_and_times_out() {
        let g = Gate::new(1);
        let s = g.acquire(None, None).unwrap();
        let d = Instant::now() + Duration::from_millis(30);
        assert!(matches!(g.acquire(Some(d), None), Err(QueryError::Timeout)));
        let c = AtomicBool::new(true);
        assert!(matches!(g.acquire(None, Some(&c)), Err(QueryError::Canceled)));
        drop(s);
        assert!(g.acquire(Some(Instant::now() + Duration::from_secs(1)), None).is_ok());
    }
}
