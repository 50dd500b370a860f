//! One process-wide watchdog thread: it stops calls at their deadlines and,
//! while calls run, asks them to check their memory limit (every 10 ms)
//! and to run the binding's wait hook (every 50 ms) on the calling thread.
//!
//! A call never waits for the watchdog and almost never wakes it: it
//! publishes its deadline in its context and wakes the watchdog only when
//! that deadline is earlier than the watchdog's next wake-up. While any
//! context needs the periodic checks (a memory limit, or a wait hook is
//! installed) the watchdog looks every 50 ms, and every 10 ms while such a
//! call runs; otherwise it sleeps until a deadline. A steady stream of
//! calls costs two atomic stores each (measured: waking the watchdog per
//! call cost 2–10 µs at real call patterns).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use super::{Shared, Termination};

/// How often running memory-limited calls check their total memory.
const MEMORY_PERIOD: Duration = crate::memory::CHECK_PERIOD;
/// How often running calls run the wait hook, and how often the watchdog
/// looks for calls that need checks while none was running.
const HOOK_PERIOD: Duration = Duration::from_millis(50);

pub(crate) struct Watchdog {
    /// Fork generation this watchdog's thread exists in.
    generation: u64,
    contexts: Mutex<Vec<Weak<Shared>>>,
    wake: Mutex<bool>,
    cv: Condvar,
    /// Nanoseconds since `base()` of the next wake-up (`u64::MAX`: none).
    next_wake: AtomicU64,
}

static CURRENT: Mutex<Option<Arc<Watchdog>>> = Mutex::new(None);

fn base() -> Instant {
    static BASE: OnceLock<Instant> = OnceLock::new();
    *BASE.get_or_init(Instant::now)
}

/// `t` as nanoseconds since the process's base instant (never 0, which
/// means "no deadline").
pub(crate) fn to_nanos(t: Instant) -> u64 {
    (t.saturating_duration_since(base()).as_nanos() as u64).max(1)
}

/// The instant `to_nanos` gave `n` for.
pub(crate) fn from_nanos(n: u64) -> Instant {
    base() + Duration::from_nanos(n)
}

fn now_nanos() -> u64 {
    to_nanos(Instant::now())
}

/// The watchdog of this process (a forked child gets a new one: the
/// parent's thread does not exist there).
fn watchdog() -> Arc<Watchdog> {
    let generation = crate::engine::FORK_GENERATION.load(Ordering::SeqCst);
    let mut cur = CURRENT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(w) = cur.as_ref().filter(|w| w.generation == generation) {
        return w.clone();
    }
    let w = Arc::new(Watchdog {
        generation,
        contexts: Mutex::new(Vec::new()),
        wake: Mutex::new(false),
        cv: Condvar::new(),
        next_wake: AtomicU64::new(u64::MAX),
    });
    let run = w.clone();
    // If the thread cannot start, deadlines are still enforced at the next
    // check the call makes itself (lane waits, event-loop waits); there is
    // nothing better to do than to keep going.
    let _ = std::thread::Builder::new().name("polyracer-watchdog".into()).spawn(move || run.main());
    *cur = Some(w.clone());
    w
}

/// Lets the watchdog see `shared`'s calls.
pub(crate) fn watch(shared: &Arc<Shared>) {
    let w = watchdog();
    let mut list = w.contexts.lock().unwrap_or_else(|e| e.into_inner());
    list.retain(|c| c.strong_count() > 0);
    list.push(Arc::downgrade(shared));
    drop(list);
    if shared.fixed.memory_limited {
        // It may be sleeping with nothing to check.
        w.notify();
    }
    let _ = shared.watchdog.set(w);
}

/// A wait hook was installed: running calls need checks from now on.
pub(crate) fn hook_installed() {
    if let Some(w) = CURRENT.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
        w.notify();
    }
}

/// Called when a call with a deadline starts, after it published `busy`
/// and the deadline.
pub(crate) fn call_started(shared: &Shared, deadline: u64) {
    let Some(w) = shared.watchdog.get() else { return };
    if deadline < w.next_wake.load(Ordering::SeqCst) {
        w.notify();
    }
}

impl Watchdog {
    fn notify(&self) {
        *self.wake.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.cv.notify_one();
    }

    fn main(self: Arc<Self>) {
        let mut last_hook = Instant::now();
        loop {
            let hook_due = last_hook.elapsed() >= HOOK_PERIOD;
            if hook_due {
                last_hook = Instant::now();
            }
            let scan = self.scan(hook_due);
            let now = now_nanos();
            let period = if scan.busy_polled {
                Some(MEMORY_PERIOD)
            } else if scan.any_polled {
                Some(HOOK_PERIOD)
            } else {
                None
            };
            let mut wake_at = scan.next_deadline.min(period.map_or(u64::MAX, |p| now + p.as_nanos() as u64));
            // Publish the plan, then look again: a call that started
            // meanwhile either saw the plan (and woke us) or is seen now.
            self.next_wake.store(wake_at, Ordering::SeqCst);
            let again = self.peek();
            if again < wake_at {
                wake_at = again;
                self.next_wake.store(wake_at, Ordering::SeqCst);
            }
            let mut woken = self.wake.lock().unwrap_or_else(|e| e.into_inner());
            while !*woken {
                let now = now_nanos();
                if wake_at != u64::MAX && now >= wake_at {
                    break;
                }
                woken = if wake_at == u64::MAX {
                    self.cv.wait(woken).unwrap_or_else(|e| e.into_inner())
                } else {
                    self.cv
                        .wait_timeout(woken, Duration::from_nanos(wake_at - now))
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                };
            }
            *woken = false;
        }
    }

    fn alive(&self) -> Vec<Arc<Shared>> {
        let mut list = self.contexts.lock().unwrap_or_else(|e| e.into_inner());
        list.retain(|c| c.strong_count() > 0);
        list.iter().filter_map(Weak::upgrade).collect()
    }

    /// Stops calls past their deadlines and requests the periodic checks.
    fn scan(&self, hook_due: bool) -> Scan {
        let now = now_nanos();
        let hook = crate::context::wait_hook().is_some();
        let mut scan = Scan { next_deadline: u64::MAX, busy_polled: false, any_polled: hook };
        for ctx in self.alive() {
            scan.any_polled |= ctx.fixed.memory_limited;
            let Some(call) = ctx.running_call() else { continue };
            if call.deadline != 0 {
                if now >= call.deadline {
                    ctx.interrupt_call(call.seq, Termination::Timeout);
                } else {
                    scan.next_deadline = scan.next_deadline.min(call.deadline);
                }
            }
            if ctx.fixed.memory_limited {
                scan.busy_polled = true;
                ctx.request_memory_check(call.seq);
            }
            if hook {
                scan.busy_polled = true;
                if hook_due {
                    ctx.request_wait_hook(call.seq);
                }
            }
        }
        scan
    }

    /// The earliest deadline of the running calls.
    fn peek(&self) -> u64 {
        self.alive()
            .iter()
            .filter_map(|ctx| ctx.running_call())
            .filter(|call| call.deadline != 0)
            .map(|call| call.deadline)
            .min()
            .unwrap_or(u64::MAX)
    }
}

struct Scan {
    /// The earliest deadline still ahead.
    next_deadline: u64,
    /// A running call needs the periodic checks.
    busy_polled: bool,
    /// Some context would need them if it ran.
    any_polled: bool,
}
