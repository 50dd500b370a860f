//! Where a context's due work runs when no Ruby thread is waiting on it: a
//! timer whose callback calls a Ruby method, an async completion. Ruby
//! code may only run on Ruby threads, so core's driver thread cannot run
//! it; the context's task scheduler queues the context here and one Ruby
//! thread, `polyracer-tasks` (started by `lib/polyracer.rb` with the first
//! context), drains the queue with the GVL released and runs each
//! context's pending tasks, re-taking the GVL for Ruby callbacks. Threads
//! blocked in `eval_await`/`call_await` pump their context themselves.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use magnus::{Error, Ruby};
use polyracer as pr;

use crate::gvl::{interrupt_requested, without_gvl};

struct Queue {
    contexts: Mutex<VecDeque<pr::WeakContext>>,
    cv: Condvar,
    /// The process whose draining thread is started (0: none; else the
    /// driver keeps the work). A forked child starts its own.
    drainer_pid: AtomicU32,
    /// The process whose draining thread is inside `rb_drain_tasks`.
    running_pid: AtomicU32,
}

static QUEUE: Queue = Queue {
    contexts: Mutex::new(VecDeque::new()),
    cv: Condvar::new(),
    drainer_pid: AtomicU32::new(0),
    running_pid: AtomicU32::new(0),
};

/// `Polyracer.__expect_drainer`: called just before the draining thread is
/// started, so work scheduled before it runs waits in the queue for it.
pub(crate) fn rb_expect_drainer() {
    let pid = std::process::id();
    if QUEUE.drainer_pid.swap(pid, Ordering::SeqCst) != pid {
        // First in this process (or forked): the parent's entries belong to
        // contexts that cannot be used here.
        QUEUE.contexts.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

fn draining_here() -> bool {
    QUEUE.drainer_pid.load(Ordering::SeqCst) == std::process::id()
}

/// The scheduler core calls (from its driver thread) for `ctx`.
pub(crate) fn scheduler(ctx: &pr::Context) -> Arc<dyn Fn() -> bool + Send + Sync> {
    let weak = ctx.downgrade();
    Arc::new(move || {
        if !draining_here() {
            return false;
        }
        QUEUE.contexts.lock().unwrap_or_else(|e| e.into_inner()).push_back(weak.clone());
        QUEUE.cv.notify_one();
        true
    })
}

/// `Polyracer.__drain_tasks`: the body of the `polyracer-tasks` thread.
/// Returns when the thread is interrupted (`Thread#kill`, exit).
pub(crate) fn rb_drain_tasks(ruby: &Ruby) -> Result<(), Error> {
    let pid = std::process::id();
    if QUEUE.running_pid.swap(pid, Ordering::SeqCst) == pid {
        return Ok(()); // another thread drains
    }
    rb_expect_drainer();
    let r = without_gvl(ruby, || loop {
        let next = {
            let mut q = QUEUE.contexts.lock().unwrap_or_else(|e| e.into_inner());
            loop {
                if let Some(c) = q.pop_front() {
                    break Some(c);
                }
                if interrupt_requested() {
                    break None;
                }
                // The unblocking function only sets a flag: look every 50 ms.
                q = QUEUE.cv.wait_timeout(q, Duration::from_millis(50)).unwrap_or_else(|e| e.into_inner()).0;
            }
        };
        match next {
            // Errors in timer callbacks have no caller to go to.
            Some(w) => {
                if let Some(ctx) = w.upgrade() {
                    let _ = ctx.run_pending_tasks();
                }
            }
            None => break,
        }
    });
    QUEUE.drainer_pid.store(0, Ordering::SeqCst);
    QUEUE.running_pid.store(0, Ordering::SeqCst);
    r
}
