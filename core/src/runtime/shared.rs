//! `Shared`: a context's state that host threads share, and the entry to
//! every call: take the context's lane, lock the isolate on this thread,
//! run, unlock (brief §2).

use std::cell::{RefCell, UnsafeCell};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, RwLock};
use std::time::{Duration, Instant};

use crate::context::{Completer, Context, HostFn, ModuleResolver, Release, RESOLVER_FN};
use crate::engine;
use crate::error::{Error, Result};
use crate::protocol::{Out, Request};
use crate::runtime::awaits::{AwaitSlot, Awaits};
use crate::runtime::driver;
use crate::runtime::locker::RawIsolate;
use crate::runtime::watchdog;
use crate::value::{HostError, Value};

/// Why the running call was stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Termination {
    None = 0,
    Timeout = 1,
    Terminated = 2,
    OutOfMemory = 3,
    Disposed = 4,
}

impl Termination {
    fn from_u8(v: u8) -> Termination {
        match v {
            1 => Termination::Timeout,
            2 => Termination::Terminated,
            3 => Termination::OutOfMemory,
            4 => Termination::Disposed,
            _ => Termination::None,
        }
    }

    /// The error a call stopped for this reason returns.
    pub(crate) fn error(self) -> Error {
        match self {
            Termination::Timeout => Error::Timeout,
            Termination::OutOfMemory => Error::OutOfMemory,
            Termination::Disposed => Error::Disposed("the context was disposed while running".into()),
            Termination::None | Termination::Terminated => Error::Terminated,
        }
    }
}

/// How often a thread waiting for a context (its lane, or an await) runs
/// the wait hook.
const WAIT_HOOK_PERIOD: Duration = Duration::from_millis(50);
static WAIT_HOOK: AtomicUsize = AtomicUsize::new(0);

/// Installs a process-wide hook that runs every 50 ms on the thread of a
/// running call (from a V8 interrupt) and on threads waiting for a context;
/// returning `true` terminates the call ([`Error::Terminated`]). Bindings
/// use it to deliver Ctrl-C (Python's `KeyboardInterrupt`) and
/// `Thread#raise` during long calls. `None` removes it.
pub fn set_wait_hook(hook: Option<fn() -> bool>) {
    WAIT_HOOK.store(hook.map_or(0, |f| f as usize), Ordering::SeqCst);
    watchdog::hook_installed();
}

pub(crate) fn wait_hook() -> Option<fn() -> bool> {
    match WAIT_HOOK.load(Ordering::Relaxed) {
        0 => None,
        // SAFETY: only `set_wait_hook` stores non-zero values, and they are
        // `fn() -> bool` pointers.
        p => Some(unsafe { std::mem::transmute::<usize, fn() -> bool>(p) }),
    }
}

/// Serialises top-level calls from different host threads, with bounded
/// waiting (a call's timeout covers the wait). Uncontended, it costs one
/// compare-and-swap.
struct Lane {
    held: AtomicBool,
    waiters: AtomicUsize,
    mutex: Mutex<()>,
    cv: Condvar,
}

struct LaneGuard<'a>(&'a Lane);

impl Drop for LaneGuard<'_> {
    fn drop(&mut self) {
        self.0.held.store(false, Ordering::SeqCst);
        if self.0.waiters.load(Ordering::SeqCst) > 0 {
            // Under the mutex, so a waiter between its check and its wait
            // cannot miss this.
            let _g = lock(&self.0.mutex);
            self.0.cv.notify_one();
        }
    }
}

impl Lane {
    fn is_taken(&self) -> bool {
        self.held.load(Ordering::SeqCst)
    }

    fn try_take(&self) -> bool {
        self.held.compare_exchange(false, true, Ordering::SeqCst, Ordering::Relaxed).is_ok()
    }

    /// Waits for the lane until `deadline` (then `Error::Timeout`), running
    /// the wait hook every 50 ms (`true` gives `Error::Terminated`).
    fn acquire(&self, deadline: Option<Instant>) -> Result<LaneGuard<'_>> {
        if self.try_take() {
            return Ok(LaneGuard(self));
        }
        self.waiters.fetch_add(1, Ordering::SeqCst);
        let _count = WaiterCount(&self.waiters);
        let hook = wait_hook();
        let mut g = lock(&self.mutex);
        loop {
            if self.try_take() {
                return Ok(LaneGuard(self));
            }
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                return Err(Error::Timeout);
            }
            let mut wake = deadline;
            if hook.is_some() {
                wake = Some(wake.map_or(now + WAIT_HOOK_PERIOD, |d| d.min(now + WAIT_HOOK_PERIOD)));
            }
            g = match wake {
                Some(w) => self.cv.wait_timeout(g, w - now).unwrap_or_else(|e| e.into_inner()).0,
                None => self.cv.wait(g).unwrap_or_else(|e| e.into_inner()),
            };
            if let Some(h) = hook {
                drop(g);
                if h() {
                    return Err(Error::Terminated);
                }
                g = lock(&self.mutex);
            }
        }
    }
}

struct WaiterCount<'a>(&'a AtomicUsize);
impl Drop for WaiterCount<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Written by the thread running a call; read by the watchdog and by
/// `terminate()` from any thread.
#[repr(align(128))]
pub(crate) struct Exec {
    /// A top-level call is running.
    pub(crate) busy: AtomicBool,
    reason: AtomicU8,
    /// Counts top-level calls, so a termination or memory check meant for
    /// one call is ignored if it lands in a later one.
    pub(crate) request_seq: AtomicUsize,
    /// The running call's deadline (`watchdog::to_nanos`), 0 for none.
    deadline: AtomicU64,
    /// Held while `terminate_execution` is requested, so the end-of-call
    /// `cancel_terminate_execution` never misses one that would then leak
    /// into the next call.
    term_lock: Mutex<()>,
}

/// Set when the context is created.
pub(crate) struct Fixed {
    pub(crate) isolate_handle: v8::IsolateHandle,
    pub(crate) raw: RawIsolate,
    pub(crate) disposed: AtomicBool,
    fork_generation: u64,
    default_timeout: Option<Duration>,
    /// The context has a memory limit: the watchdog has running calls
    /// check their total memory (`memory::CHECK_PERIOD`).
    pub(crate) memory_limited: bool,
}

/// What the isolate has pending, published at the end of every top-level
/// call for threads that do not hold the lock.
#[derive(Default)]
pub(crate) struct Pending {
    /// When the next timer is due (`watchdog::to_nanos`), 0 for none.
    pub(crate) next_timer: AtomicU64,
    /// Async host calls whose promises are not settled yet.
    pub(crate) outstanding: AtomicUsize,
    /// Threads blocked in `drive` (they pump the context themselves).
    sync_waiters: AtomicUsize,
    /// The driver's current interval for polling V8's tasks (nanoseconds).
    task_poll: AtomicU64,
}

/// The binding's way to run due work on the host's own loop (see
/// `Context::set_task_scheduler`).
pub(crate) type TaskScheduler = Arc<dyn Fn() -> bool + Send + Sync>;

/// A running call, as the watchdog sees it.
pub(crate) struct RunningCall {
    pub(crate) seq: usize,
    pub(crate) deadline: u64,
}

/// State shared between a context's host handles, the threads calling it
/// and the watchdog.
#[repr(C)]
pub(crate) struct Shared {
    lane: Lane,
    pub(crate) exec: Exec,
    pub(crate) fixed: Fixed,
    /// The isolate itself; taken (under the lane) to dispose it.
    isolate: UnsafeCell<Option<crate::runtime::IsolateBox>>,
    host_fns: RwLock<Vec<HostFn>>,
    module_resolver: RwLock<Option<ModuleResolver>>,
    pub(crate) releases: Mutex<Vec<Release>>,
    pub(crate) has_releases: AtomicBool,
    pub(crate) completions: Mutex<Vec<(u32, Result<Value, HostError>)>>,
    pub(crate) has_completions: AtomicBool,
    pub(crate) awaits: Awaits,
    pub(crate) pending: Pending,
    scheduler: RwLock<Option<TaskScheduler>>,
    /// Counts wake-ups for threads waiting for completions, settled awaits,
    /// new timers or a termination.
    signal: Mutex<u64>,
    signal_cv: Condvar,
    pub(crate) watchdog: OnceLock<Arc<watchdog::Watchdog>>,
}

// SAFETY: `isolate` is only touched by the thread holding the lane; V8
// objects behind it only under the isolate's lock (`Locked`).
unsafe impl Sync for Shared {}
unsafe impl Send for Shared {}

thread_local! {
    /// Contexts this thread is running a call on: a call from inside one of
    /// their host callbacks is nested in that call, not a new one.
    static HELD: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
}

struct HeldGuard(usize);
impl Drop for HeldGuard {
    fn drop(&mut self) {
        HELD.with(|h| {
            let mut h = h.borrow_mut();
            if let Some(pos) = h.iter().rposition(|k| *k == self.0) {
                h.remove(pos);
            }
        });
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    pub(crate) fn new(
        isolate: crate::runtime::IsolateBox,
        isolate_handle: v8::IsolateHandle,
        raw: RawIsolate,
        default_timeout: Option<Duration>,
        memory_limited: bool,
    ) -> Shared {
        Shared {
            lane: Lane {
                held: AtomicBool::new(false),
                waiters: AtomicUsize::new(0),
                mutex: Mutex::new(()),
                cv: Condvar::new(),
            },
            exec: Exec {
                busy: AtomicBool::new(false),
                reason: AtomicU8::new(Termination::None as u8),
                request_seq: AtomicUsize::new(0),
                deadline: AtomicU64::new(0),
                term_lock: Mutex::new(()),
            },
            fixed: Fixed {
                isolate_handle,
                raw,
                disposed: AtomicBool::new(false),
                fork_generation: engine::FORK_GENERATION.load(Ordering::SeqCst),
                default_timeout,
                memory_limited,
            },
            isolate: UnsafeCell::new(Some(isolate)),
            host_fns: RwLock::new(Vec::new()),
            module_resolver: RwLock::new(None),
            releases: Mutex::new(Vec::new()),
            has_releases: AtomicBool::new(false),
            completions: Mutex::new(Vec::new()),
            has_completions: AtomicBool::new(false),
            awaits: Awaits::default(),
            pending: Pending::default(),
            scheduler: RwLock::new(None),
            signal: Mutex::new(0),
            signal_cv: Condvar::new(),
            watchdog: OnceLock::new(),
        }
    }

    fn key(self: &Arc<Self>) -> usize {
        Arc::as_ptr(self) as usize
    }

    /// Whether this is a forked child that cannot use the context. A
    /// single-threaded engine has no threads the child would lack, and its
    /// fork handler keeps V8's memory inherited (`engine`): there the child
    /// goes on with its copy of the context, as a preforking server expects.
    pub(crate) fn forked(&self) -> bool {
        engine::FORK_GENERATION.load(Ordering::Relaxed) != self.fixed.fork_generation
            && !engine::engine().options.single_threaded
    }

    fn check_usable(&self) -> Result<()> {
        if self.forked() {
            return Err(Error::Disposed(
                "this context was created before fork() and cannot be used in the child process; \
                 create a new context in the child, or configure the engine single_threaded before first use \
                 so children can use their copies"
                    .into(),
            ));
        }
        if self.fixed.disposed.load(Ordering::Acquire) {
            return Err(Error::Disposed("the context is disposed".into()));
        }
        Ok(())
    }

    /// Runs a request on this thread: a top-level call takes the lane and
    /// the isolate's lock; a call from inside one of this context's host
    /// callbacks (on this thread) runs nested in the call that made it.
    pub(crate) fn request(self: &Arc<Self>, req: Request, timeout: Option<Duration>) -> Result<Out> {
        self.check_usable()?;
        let deadline = match timeout.or(self.fixed.default_timeout) {
            Some(t) => Some(Instant::now() + crate::limits::check_timeout(t)?),
            None => None,
        };
        self.request_until(req, deadline)
    }

    fn request_until(self: &Arc<Self>, req: Request, deadline: Option<Instant>) -> Result<Out> {
        self.request_lane(req, deadline, false).map(|o| o.unwrap_or(Out::Unit))
    }

    /// `request_until`; with `try_only`, `None` when another thread holds
    /// the lane (instead of waiting for it).
    fn request_lane(self: &Arc<Self>, req: Request, deadline: Option<Instant>, try_only: bool) -> Result<Option<Out>> {
        let key = self.key();
        if HELD.with(|h| h.borrow().contains(&key)) {
            return crate::runtime::run_nested(self, req, deadline).map(Some);
        }
        let _lane = if try_only {
            if !self.lane.try_take() {
                return Ok(None);
            }
            LaneGuard(&self.lane)
        } else {
            self.lane.acquire(deadline)?
        };
        self.check_usable()?;
        HELD.with(|h| h.borrow_mut().push(key));
        let held = HeldGuard(key);
        // The lane is held and the context is not disposed: the isolate is
        // present and no other thread uses it.
        let out = crate::runtime::run_top_level(self, req, deadline);
        drop(held);
        if self.fixed.disposed.load(Ordering::SeqCst) {
            // Disposed by one of its own host callbacks: the isolate goes now
            // that the call has unwound.
            self.teardown();
        }
        drop(_lane);
        self.after_session();
        out.map(Some)
    }

    /// After a thread released the lock: hands settled awaits to their
    /// waiters, and makes sure work the call left (timers, completions) is
    /// run by a waiter or the driver. Two atomic loads when there is none.
    fn after_session(self: &Arc<Self>) {
        let delivered = self.awaits.deliver();
        let next_timer = self.pending.next_timer.load(Ordering::Acquire);
        let completions = self.has_completions.load(Ordering::SeqCst);
        if self.pending.sync_waiters.load(Ordering::SeqCst) > 0 {
            if delivered || next_timer != 0 || completions {
                self.signal();
            }
            return;
        }
        if completions {
            driver::schedule(self, Instant::now());
        } else if next_timer != 0 {
            driver::schedule(self, watchdog::from_nanos(next_timer));
        }
    }

    /// Installs (or removes) the binding's task scheduler.
    pub(crate) fn set_scheduler(&self, s: Option<TaskScheduler>) {
        *self.scheduler.write().unwrap_or_else(|e| e.into_inner()) = s;
    }

    /// Runs what is due (timers, completions, V8 tasks) with the lock taken
    /// on this thread. Returns whether anything ran. `try_only`: give up if
    /// another thread holds the context (its call runs the work, and
    /// `after_session` reschedules what is left).
    pub(crate) fn run_pending(self: &Arc<Self>, deadline: Option<Instant>, try_only: bool) -> Result<bool> {
        self.check_usable()?;
        match self.request_lane(Request::RunPending, deadline, try_only)? {
            Some(Out::Value(Value::Bool(b))) => Ok(b),
            _ => Ok(false),
        }
    }

    /// An await was registered: the driver watches its deadline and, while
    /// no thread waits on the context, polls V8's tasks for it.
    pub(crate) fn await_registered(self: &Arc<Self>, deadline: Option<Instant>) {
        let first = driver::TASK_POLL_FIRST.as_nanos() as u64;
        self.pending.task_poll.store(first, Ordering::Relaxed);
        let now = Instant::now();
        let mut at = now + driver::TASK_POLL_FIRST;
        if let Some(d) = deadline {
            at = at.min(d);
        }
        driver::schedule(self, at);
    }

    /// The driver's visit: expires awaits past their deadline, then runs
    /// what is due, through the binding's scheduler if it has one.
    pub(crate) fn service(self: &Arc<Self>) {
        if self.forked() || self.fixed.disposed.load(Ordering::Acquire) {
            return;
        }
        let now = Instant::now();
        self.awaits.expire(now);
        if self.pending.sync_waiters.load(Ordering::SeqCst) > 0 {
            return; // they pump it themselves
        }
        let next_timer = self.pending.next_timer.load(Ordering::Acquire);
        let timer_due = next_timer != 0 && watchdog::from_nanos(next_timer) <= now;
        let completions = self.has_completions.load(Ordering::SeqCst);
        let live = self.awaits.live();
        let attempted = timer_due || completions || live;
        if attempted {
            let scheduler = self.scheduler.read().unwrap_or_else(|e| e.into_inner()).clone();
            let taken = scheduler.is_some_and(|s| s());
            if !taken {
                // The context's default timeout bounds work run here.
                let deadline = self.fixed.default_timeout.map(|t| Instant::now() + t);
                let _ = self.run_pending(deadline, true);
            }
        }
        // What is left. Timers and completions are rescheduled by whoever
        // runs them (`after_session`): rescheduling them here, before the
        // host's loop got to them, would spin the driver. Here: the next
        // timer if nothing ran, the next await deadline, and the next look
        // at V8's tasks while awaits are live.
        let mut at: Option<Instant> = None;
        let next_timer = self.pending.next_timer.load(Ordering::Acquire);
        if !attempted && next_timer != 0 {
            at = Some(watchdog::from_nanos(next_timer));
        }
        if self.awaits.live() {
            let poll = self.pending.task_poll.load(Ordering::Relaxed).max(driver::TASK_POLL_FIRST.as_nanos() as u64);
            let next = (poll * 2).min(driver::TASK_POLL_MAX.as_nanos() as u64);
            self.pending.task_poll.store(next, Ordering::Relaxed);
            let poll_at = Instant::now() + Duration::from_nanos(poll);
            at = Some(at.map_or(poll_at, |a| a.min(poll_at)));
            if let Some(d) = self.awaits.earliest_deadline() {
                at = Some(at.map_or(d, |a| a.min(d)));
            }
        }
        if let Some(at) = at {
            driver::schedule(self, at);
        }
    }

    /// Blocks this thread until `slot` settles (or, without one, until no
    /// timers or async host calls are left), pumping the event loop here
    /// whenever work is due and holding the context only while it runs.
    pub(crate) fn drive(self: &Arc<Self>, slot: Option<&AwaitSlot>, deadline: Option<Instant>) -> Result<()> {
        self.pending.sync_waiters.fetch_add(1, Ordering::SeqCst);
        let _waiting = SyncWaiter(self);
        let hook = wait_hook();
        // Nothing of ours can settle the promise: V8's own tasks get a
        // moment, unless another call on the context shows it is in use.
        let mut stalled: Option<(Instant, usize)> = None;
        loop {
            let seen = *lock(&self.signal);
            if slot.is_some_and(|s| s.is_finished()) {
                return Ok(());
            }
            self.check_usable()?;
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                return Err(Error::Timeout);
            }
            let next_timer = match self.pending.next_timer.load(Ordering::Acquire) {
                0 => None,
                n => Some(watchdog::from_nanos(n)),
            };
            let completions = self.has_completions.load(Ordering::SeqCst);
            let outstanding = self.pending.outstanding.load(Ordering::Acquire) > 0;
            let idle = next_timer.is_none() && !outstanding && !completions;
            let poll_tasks = idle && slot.is_some();
            if completions || next_timer.is_some_and(|t| t <= now) || poll_tasks {
                let ran = self.run_pending(deadline, false)?;
                if slot.is_some_and(|s| s.is_finished()) {
                    return Ok(());
                }
                if !poll_tasks || ran {
                    stalled = None;
                    continue;
                }
                // Our own pump is not another call.
                if let Some(st) = stalled.as_mut() {
                    st.1 = self.exec.request_seq.load(Ordering::SeqCst);
                }
            }
            if idle {
                let Some(slot) = slot else { return Ok(()) };
                let calls = self.exec.request_seq.load(Ordering::SeqCst);
                let (since, seq) = *stalled.get_or_insert((now, calls));
                if seq != calls {
                    stalled = None;
                } else if now.duration_since(since) >= crate::runtime::event_loop::STALL_GRACE {
                    slot.cancel();
                    return Err(crate::runtime::event_loop::never_settles());
                }
            } else {
                stalled = None;
            }
            let mut wake = next_timer;
            if poll_tasks {
                wake = Some(now + Duration::from_millis(5));
            }
            if let Some(d) = deadline {
                wake = Some(wake.map_or(d, |w| w.min(d)));
            }
            if hook.is_some() {
                let h = now + WAIT_HOOK_PERIOD;
                wake = Some(wake.map_or(h, |w| w.min(h)));
            }
            let mut g = lock(&self.signal);
            if *g == seen {
                g = match wake {
                    Some(w) if w <= now => g,
                    Some(w) => self.signal_cv.wait_timeout(g, w - now).unwrap_or_else(|e| e.into_inner()).0,
                    None => self.signal_cv.wait(g).unwrap_or_else(|e| e.into_inner()),
                };
            }
            drop(g);
            if hook.is_some_and(|h| h()) {
                return Err(Error::Terminated);
            }
        }
    }

    /// Whether this thread is inside one of this context's host callbacks.
    pub(crate) fn nested_here(self: &Arc<Self>) -> bool {
        let key = self.key();
        HELD.with(|h| h.borrow().contains(&key))
    }

    /// The deadline for a call with `timeout` (or the context's default).
    pub(crate) fn deadline_for(&self, timeout: Option<Duration>) -> Result<Option<Instant>> {
        self.check_usable()?;
        Ok(match timeout.or(self.fixed.default_timeout) {
            Some(t) => Some(Instant::now() + crate::limits::check_timeout(t)?),
            None => None,
        })
    }

    /// Rejects every pending await and wakes threads blocked on one.
    pub(crate) fn reject_awaits(&self, err: impl Fn() -> Error) {
        self.awaits.reject_all(err);
        self.signal();
    }

    /// Publishes the start of a top-level call (on the calling thread, with
    /// the isolate locked).
    pub(crate) fn begin_call(&self, deadline: Option<Instant>) {
        let e = &self.exec;
        e.request_seq.fetch_add(1, Ordering::SeqCst);
        let d = deadline.map_or(0, watchdog::to_nanos);
        e.deadline.store(d, Ordering::SeqCst);
        e.busy.store(true, Ordering::SeqCst);
        if d != 0 {
            watchdog::call_started(self, d);
        }
    }

    /// A nested call with its own timeout: the earlier deadline applies to
    /// the whole call. Returns the deadline to restore afterwards.
    pub(crate) fn tighten_deadline(&self, deadline: Instant) -> u64 {
        let d = watchdog::to_nanos(deadline);
        let old = self.exec.deadline.load(Ordering::SeqCst);
        if old == 0 || d < old {
            self.exec.deadline.store(d, Ordering::SeqCst);
            watchdog::call_started(self, d);
        }
        old
    }

    pub(crate) fn restore_deadline(&self, old: u64) {
        self.exec.deadline.store(old, Ordering::SeqCst);
    }

    pub(crate) fn running_call(&self) -> Option<RunningCall> {
        let e = &self.exec;
        if !e.busy.load(Ordering::SeqCst) {
            return None;
        }
        Some(RunningCall { seq: e.request_seq.load(Ordering::SeqCst), deadline: e.deadline.load(Ordering::SeqCst) })
    }

    pub(crate) fn reason(&self) -> Termination {
        Termination::from_u8(self.exec.reason.load(Ordering::SeqCst))
    }

    pub(crate) fn interrupted(&self) -> bool {
        self.exec.reason.load(Ordering::SeqCst) != Termination::None as u8
    }

    /// Terminates the running call (if any) for `reason`.
    ///
    /// The reason is published before `busy` is checked, and a finishing
    /// call clears `busy` before it checks the reason (both SeqCst): so
    /// either this sees the call finished and withdraws, or the call sees
    /// the reason and cancels the termination under `term_lock`, after
    /// `terminate_execution` was issued.
    ///
    /// Returns whether a termination is now under way.
    pub(crate) fn interrupt(&self, reason: Termination) -> bool {
        self.interrupt_if(None, reason)
    }

    /// `interrupt`, only if call `seq` is still the one running.
    pub(crate) fn interrupt_call(&self, seq: usize, reason: Termination) -> bool {
        self.interrupt_if(Some(seq), reason)
    }

    fn interrupt_if(&self, seq: Option<usize>, reason: Termination) -> bool {
        let e = &self.exec;
        let _g = lock(&e.term_lock);
        if seq.is_some_and(|s| s != e.request_seq.load(Ordering::SeqCst)) {
            return false;
        }
        let none = Termination::None as u8;
        if e.reason.compare_exchange(none, reason as u8, Ordering::SeqCst, Ordering::SeqCst).is_err() {
            return true; // already terminating
        }
        if e.busy.load(Ordering::SeqCst) {
            self.fixed.isolate_handle.terminate_execution();
            self.signal();
            true
        } else {
            e.reason.store(none, Ordering::SeqCst);
            false
        }
    }

    /// Marks a call stopped for `reason` without terminating V8 (the near
    /// heap limit callback terminates itself).
    pub(crate) fn set_reason(&self, reason: Termination) {
        let _ = self.exec.reason.compare_exchange(
            Termination::None as u8,
            reason as u8,
            Ordering::SeqCst,
            Ordering::SeqCst,
        );
    }

    /// At the end of a top-level call: clears any pending termination so it
    /// cannot hit the next call.
    pub(crate) fn finish_call(&self) {
        let e = &self.exec;
        e.busy.store(false, Ordering::SeqCst);
        e.deadline.store(0, Ordering::SeqCst);
        if e.reason.load(Ordering::SeqCst) != Termination::None as u8 {
            let _g = lock(&e.term_lock);
            self.fixed.isolate_handle.cancel_terminate_execution();
            e.reason.store(Termination::None as u8, Ordering::SeqCst);
        }
    }

    pub(crate) fn request_memory_check(&self, seq: usize) {
        self.fixed
            .isolate_handle
            .request_interrupt(crate::runtime::check_memory_callback(), seq as *mut std::ffi::c_void);
    }

    pub(crate) fn request_wait_hook(&self, seq: usize) {
        self.fixed.isolate_handle.request_interrupt(crate::runtime::wait_hook_callback(), seq as *mut std::ffi::c_void);
    }

    pub(crate) fn set_module_resolver(&self, resolver: Option<ModuleResolver>) {
        *self.module_resolver.write().unwrap_or_else(|e| e.into_inner()) = resolver;
    }

    pub(crate) fn add_host_fn(&self, f: HostFn) -> usize {
        let mut fns = self.host_fns.write().unwrap_or_else(|e| e.into_inner());
        fns.push(f);
        fns.len() - 1
    }

    /// Runs host function `fn_id` on this thread (JS called it).
    pub(crate) fn run_host_fn(
        self: &Arc<Self>,
        fn_id: usize,
        args: Vec<Value>,
        completion: Option<u32>,
    ) -> Result<Value, HostError> {
        if fn_id == RESOLVER_FN {
            let resolver = self.module_resolver.read().unwrap_or_else(|e| e.into_inner()).clone();
            let Some(resolver) = resolver else {
                return Err(HostError::new("no module resolver: use eval_module to install one").with_name("TypeError"));
            };
            let (spec, referrer) = match (args.first(), args.get(1)) {
                (Some(Value::String(s)), Some(Value::String(r))) => (s.as_str(), r.as_str()),
                _ => return Err(HostError::new("bad resolver arguments")),
            };
            return std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| resolver(spec, referrer)))
                .unwrap_or_else(|_| Err(HostError::new("the module resolver panicked")))
                .map(Value::String);
        }
        let f = self.host_fns.read().unwrap_or_else(|e| e.into_inner()).get(fn_id).cloned();
        let Some(f) = f else {
            return Err(HostError::new(format!("no host function #{fn_id}")));
        };
        let ctx = Context::borrowed(self.clone());
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match (&f, completion) {
            (HostFn::Sync(f), _) => f(&ctx, args),
            (HostFn::Async(f), Some(id)) => {
                let completer = Completer::new(Arc::downgrade(self), id);
                f(&ctx, args, completer);
                Ok(Value::Undefined)
            }
            (HostFn::Async(_), None) => Err(HostError::new("async host function called without a promise")),
            (HostFn::Raw(_), _) => Err(HostError::new("a raw host function is called by the trampoline")),
        }));
        outcome.unwrap_or_else(|p| {
            Err(HostError::new(format!("host function panicked: {}", super::host_calls::panic_message(&*p))))
        })
    }

    pub(crate) fn host_fn(&self, fn_id: usize) -> Option<HostFn> {
        if fn_id == RESOLVER_FN {
            return None;
        }
        self.host_fns.read().unwrap_or_else(|e| e.into_inner()).get(fn_id).cloned()
    }

    pub(crate) fn queue_release(&self, what: Release) {
        if self.fixed.disposed.load(Ordering::Relaxed) {
            return;
        }
        lock(&self.releases).push(what);
        self.has_releases.store(true, Ordering::Release);
    }

    pub(crate) fn complete(self: &Arc<Self>, id: u32, result: Result<Value, HostError>) {
        lock(&self.completions).push((id, result));
        self.has_completions.store(true, Ordering::SeqCst);
        self.signal();
        if self.pending.sync_waiters.load(Ordering::SeqCst) == 0 {
            driver::schedule(self, Instant::now());
        }
    }

    fn signal(&self) {
        *lock(&self.signal) += 1;
        self.signal_cv.notify_all();
    }

    /// An event loop with nothing to run: waits (holding the isolate) until
    /// an async completion or a termination arrives or `until` passes. Runs
    /// the wait hook every 50 ms. May return early; the caller re-checks.
    pub(crate) fn wait_for_work(&self, until: Option<Instant>) {
        let hook = wait_hook();
        let mut g = lock(&self.signal);
        if !self.has_completions.load(Ordering::SeqCst) && !self.interrupted() {
            let now = Instant::now();
            let mut wake = until;
            if hook.is_some() {
                wake = Some(wake.map_or(now + WAIT_HOOK_PERIOD, |w| w.min(now + WAIT_HOOK_PERIOD)));
            }
            g = match wake {
                Some(w) if w <= now => g,
                Some(w) => self.signal_cv.wait_timeout(g, w - now).unwrap_or_else(|e| e.into_inner()).0,
                None => self.signal_cv.wait(g).unwrap_or_else(|e| e.into_inner()),
            };
        }
        drop(g);
        if hook.is_some_and(|h| h()) {
            self.interrupt(Termination::Terminated);
        }
    }

    pub(crate) fn dispose(self: &Arc<Self>) {
        let child = engine::FORK_GENERATION.load(Ordering::Relaxed) != self.fixed.fork_generation;
        if self.forked() || (child && self.lane.is_taken()) {
            // The isolate cannot be used in a forked child, or the lane is
            // held by a thread that does not exist here (a call was running
            // when the process forked). Only mark it.
            self.fixed.disposed.store(true, Ordering::SeqCst);
            self.awaits.reject_all(disposed_error);
            return;
        }
        if !self.fixed.disposed.swap(true, Ordering::SeqCst) {
            self.interrupt(Termination::Disposed);
        }
        let key = self.key();
        if HELD.with(|h| h.borrow().contains(&key)) {
            // From inside one of its own host callbacks: the call tears the
            // isolate down once it has unwound (`request`).
            return;
        }
        let _lane = loop {
            match self.lane.acquire(None) {
                Ok(l) => break l,
                // The wait hook asked to stop waiting; disposal cannot.
                Err(_) => continue,
            }
        };
        self.teardown();
    }

    /// Disposes the isolate (the caller holds the lane).
    fn teardown(&self) {
        // SAFETY: the lane is held (see the Sync impl).
        let isolate = unsafe { (*self.isolate.get()).take() };
        if let Some(isolate) = isolate {
            crate::runtime::dispose_isolate(isolate, self.fixed.raw);
        }
        self.awaits.reject_all(disposed_error);
        self.signal();
    }
}

fn disposed_error() -> Error {
    Error::Disposed("the context was disposed while the promise was pending".into())
}

/// A thread in `drive`; when it leaves, the driver takes over what is left.
struct SyncWaiter<'a>(&'a Arc<Shared>);
impl Drop for SyncWaiter<'_> {
    fn drop(&mut self) {
        let s = self.0;
        if s.pending.sync_waiters.fetch_sub(1, Ordering::SeqCst) == 1 && !s.fixed.disposed.load(Ordering::Acquire) {
            let timers = s.pending.next_timer.load(Ordering::Acquire) != 0;
            if timers || s.awaits.live() || s.has_completions.load(Ordering::SeqCst) {
                driver::schedule(s, Instant::now());
            }
        }
    }
}
