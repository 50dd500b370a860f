//! The event-loop driver: one process-wide thread that notices when a
//! context has work due while no thread is waiting on it (a timer, an async
//! host completion, an await's deadline, V8 tasks an await may need) and
//! gets that work run: through the binding's task scheduler, which runs
//! [`Context::run_pending_tasks`](crate::Context::run_pending_tasks) on the
//! host's own loop, or, without one, right here. Either way the context is
//! locked only while the work runs.
//!
//! Threads that block on an await pump their context themselves; the driver
//! leaves such a context alone (so host callbacks run on the waiting
//! thread, as Ruby and Python's signal handling need).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::{Duration, Instant};

use super::shared::lock;
use super::Shared;

/// How often the driver lets V8 run its own foreground tasks (finishing an
/// async WebAssembly compile) for a context with awaits and nothing else
/// scheduled: V8 does not say when it posts one. Doubles from the first
/// value while nothing happens, up to the second.
pub(crate) const TASK_POLL_FIRST: Duration = Duration::from_millis(2);
pub(crate) const TASK_POLL_MAX: Duration = Duration::from_millis(100);

struct Entries {
    due: BTreeMap<(Instant, usize), Weak<Shared>>,
    at: HashMap<usize, Instant>,
}

struct Driver {
    generation: u64,
    entries: Mutex<Entries>,
    cv: Condvar,
}

static CURRENT: Mutex<Option<Arc<Driver>>> = Mutex::new(None);

/// This process's driver (a forked child starts its own).
fn driver() -> Arc<Driver> {
    let generation = crate::engine::FORK_GENERATION.load(Ordering::SeqCst);
    let mut cur = lock(&CURRENT);
    if let Some(d) = cur.as_ref().filter(|d| d.generation == generation) {
        return d.clone();
    }
    let d = Arc::new(Driver {
        generation,
        entries: Mutex::new(Entries { due: BTreeMap::new(), at: HashMap::new() }),
        cv: Condvar::new(),
    });
    let run = d.clone();
    // Without the thread, timers still run at the next call or await on
    // the context; there is nothing better to do than to go on.
    let _ = std::thread::Builder::new().name("polyracer-driver".into()).spawn(move || run.main());
    *cur = Some(d.clone());
    d
}

/// Asks the driver to look at `shared` at `when` (or earlier, if it was
/// already due to).
pub(crate) fn schedule(shared: &Arc<Shared>, when: Instant) {
    let d = driver();
    let key = Arc::as_ptr(shared) as usize;
    let mut e = lock(&d.entries);
    if let Some(old) = e.at.get(&key).copied() {
        if old <= when {
            return;
        }
        e.due.remove(&(old, key));
    }
    e.at.insert(key, when);
    e.due.insert((when, key), Arc::downgrade(shared));
    if e.due.keys().next().is_some_and(|k| k.1 == key && k.0 == when) {
        d.cv.notify_one();
    }
}

impl Driver {
    fn main(self: Arc<Self>) {
        let mut e = lock(&self.entries);
        loop {
            let now = Instant::now();
            let mut ready = Vec::new();
            while let Some((&(t, key), _)) = e.due.iter().next() {
                if t > now {
                    break;
                }
                let w = e.due.remove(&(t, key)).expect("entry");
                e.at.remove(&key);
                ready.push(w);
            }
            if !ready.is_empty() {
                drop(e);
                for w in ready {
                    if let Some(s) = w.upgrade() {
                        s.service();
                    }
                }
                e = lock(&self.entries);
                continue;
            }
            e = match e.due.keys().next().map(|k| k.0) {
                Some(t) => {
                    self.cv.wait_timeout(e, t.saturating_duration_since(now)).unwrap_or_else(|p| p.into_inner()).0
                }
                None => self.cv.wait(e).unwrap_or_else(|p| p.into_inner()),
            };
        }
    }
}
