//! One process-wide watchdog thread: it stops calls at their deadlines and,
//! while calls run, asks them to check their memory limit (every 10 ms)
//! and to run the binding's wait hook (every 50 ms) on the calling thread.
//!
//! A call never waits for the watchdog: it publishes its deadline in its
//! context and wakes the watchdog only when that deadline is earlier than
//! the watchdog's next wake-up, or when the watchdog went idle. So a steady
//! stream of calls with the same timeout costs two atomic stores each.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use super::{Shared, Termination};

/// How often running memory-limited calls check their total memory.
const MEMORY_PERIOD: Duration = crate::memory::CHECK_PERIOD;
/// How often running calls run the wait hook (in memory periods).
const HOOK_EVERY: u32 = 5;
/// After this long with no call running that needs polling, the watchdog
/// sleeps until a deadline or a wake-up.
const IDLE_AFTER: Duration = Duration::from_secs(1);

pub(crate) struct Watchdog {
    /// Fork generation this watchdog's thread exists in.
    generation: u64,
    contexts: Mutex<Vec<Weak<Shared>>>,
    wake: Mutex<bool>,
    cv: Condvar,
    /// Nanoseconds since `base()` of the next wake-up (`u64::MAX`: idle).
    next_wake: AtomicU64,
    idle: AtomicBool,
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
        idle: AtomicBool::new(true),
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
    let _ = shared.watchdog.set(w);
}

/// Called when a call starts, after it published `busy` and its deadline.
pub(crate) fn call_started(shared: &Shared, deadline: u64, polled: bool) {
    let Some(w) = shared.watchdog.get() else { return };
    if (deadline != 0 && deadline < w.next_wake.load(Ordering::SeqCst)) || (polled && w.idle.load(Ordering::SeqCst)) {
        w.notify();
    }
}

impl Watchdog {
    fn notify(&self) {
        *self.wake.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.cv.notify_one();
    }

    fn main(self: Arc<Self>) {
        let mut tick: u32 = 0;
        let mut last_busy = Instant::now();
        loop {
            let (mut next, mut polled) = self.scan(tick);
            tick = tick.wrapping_add(1);
            if polled {
                last_busy = Instant::now();
            }
            let going_idle = !polled && last_busy.elapsed() >= IDLE_AFTER;
            // Publish the plan, then look again: a call that started
            // meanwhile either saw the plan (and woke us) or is seen now.
            self.idle.store(going_idle, Ordering::SeqCst);
            let periodic = if going_idle { u64::MAX } else { now_nanos() + MEMORY_PERIOD.as_nanos() as u64 };
            self.next_wake.store(next.min(periodic), Ordering::SeqCst);
            let (again, polled_again) = self.peek();
            next = next.min(again);
            polled |= polled_again;
            if polled && going_idle {
                self.idle.store(false, Ordering::SeqCst);
            }
            let wake_at = next.min(if polled || !going_idle { periodic } else { u64::MAX });
            self.next_wake.store(wake_at, Ordering::SeqCst);
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
    /// Returns the earliest deadline still ahead and whether a running call
    /// needs the periodic checks.
    fn scan(&self, tick: u32) -> (u64, bool) {
        let now = now_nanos();
        let hook = crate::context::wait_hook().is_some();
        let mut next = u64::MAX;
        let mut polled = false;
        for ctx in self.alive() {
            let Some(call) = ctx.running_call() else { continue };
            if call.deadline != 0 {
                if now >= call.deadline {
                    ctx.interrupt_call(call.seq, Termination::Timeout);
                } else {
                    next = next.min(call.deadline);
                }
            }
            if ctx.fixed.memory_limited {
                polled = true;
                ctx.request_memory_check(call.seq);
            }
            if hook {
                polled = true;
                if tick.is_multiple_of(HOOK_EVERY) {
                    ctx.request_wait_hook(call.seq);
                }
            }
        }
        (next, polled)
    }

    /// Like `scan`, without acting.
    fn peek(&self) -> (u64, bool) {
        let hook = crate::context::wait_hook().is_some();
        let mut next = u64::MAX;
        let mut polled = false;
        for ctx in self.alive() {
            if let Some(call) = ctx.running_call() {
                if call.deadline != 0 {
                    next = next.min(call.deadline);
                }
                polled |= hook || ctx.fixed.memory_limited;
            }
        }
        (next, polled)
    }
}
