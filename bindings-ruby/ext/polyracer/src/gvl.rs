//! Releasing the GVL around calls, re-taking it for callbacks, and the
//! unblocking function that stops a call for `Thread#raise` and signals.

use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};

use magnus::error::ErrorType;
use magnus::rb_sys::{protect, AsRawValue};
use magnus::value::ReprValue;
use magnus::{Error, Ruby};

use crate::causes::{keep_cause, take_escape, INTERRUPT_EXC};

pub(crate) struct Job<F, R> {
    pub(crate) f: Option<F>,
    pub(crate) out: Option<std::thread::Result<R>>,
}

pub(crate) unsafe extern "C" fn run_job<F: FnOnce() -> R, R>(data: *mut c_void) -> *mut c_void {
    // SAFETY: `data` is the `Job` owned by the caller, which waits for us.
    let job = unsafe { &mut *(data as *mut Job<F, R>) };
    if let Some(f) = job.f.take() {
        job.out = Some(catch_unwind(AssertUnwindSafe(f)));
    }
    std::ptr::null_mut()
}

/// Set by the unblocking function, which may run in a signal handler (see
/// `without_gvl`): it only stores to an atomic. The waiting thread notices
/// through core's wait hook (`interrupt_requested`) and terminates its JS.
pub(crate) struct Unblock {
    pub(crate) fired: AtomicBool,
}

pub(crate) unsafe extern "C" fn unblock(data: *mut c_void) {
    // SAFETY: `data` is the `Unblock` of a `without_gvl` call still running.
    let u = unsafe { &*(data as *const Unblock) };
    u.fired.store(true, Ordering::SeqCst);
}

thread_local! {
    /// The `Unblock` of this thread's innermost `without_gvl` call.
    pub(crate) static CURRENT_UNBLOCK: std::cell::Cell<*const Unblock> = const { std::cell::Cell::new(std::ptr::null()) };
}

/// Core's wait hook: runs on a waiting thread every 50 ms; `true` terminates
/// the call it waits on.
pub(crate) fn interrupt_requested() -> bool {
    let p = CURRENT_UNBLOCK.with(|c| c.get());
    // SAFETY: the pointer is cleared before its `Unblock` goes out of scope.
    !p.is_null() && unsafe { (*p).fired.load(Ordering::SeqCst) }
}

pub(crate) fn panic_error(ruby: &Ruby, p: Box<dyn std::any::Any + Send>) -> Error {
    let msg = p
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".into());
    Error::new(ruby.exception_runtime_error(), format!("polyracer internal error: {msg}"))
}

/// Runs `f` with the GVL released. Interrupts (Thread#raise, Timeout, signals,
/// Thread#kill) terminate the running JS (through the wait hook, within
/// 50 ms) and are raised afterwards.
///
/// `rb_nogvl` with `RB_NOGVL_UBF_ASYNC_SAFE`: without it, Ruby starts (and
/// kills) a helper thread around every call made from the main thread while
/// it is the only thread, which cost ~40 µs per call here. The flag lets
/// Ruby call `unblock` from its signal handler, so `unblock` only stores an
/// atomic.
pub(crate) fn without_gvl<R>(ruby: &Ruby, f: impl FnOnce() -> R) -> Result<R, Error> {
    let u = Unblock { fired: AtomicBool::new(false) };
    let mut job = Job { f: Some(f), out: None };
    let prev = CURRENT_UNBLOCK.with(|c| c.replace(&u));
    let flags = (rb_sys::RB_NOGVL_INTR_FAIL | rb_sys::RB_NOGVL_UBF_ASYNC_SAFE) as std::os::raw::c_int;
    let outcome = loop {
        // SAFETY: both pointers outlive the call; `run_job` matches `job`'s type.
        unsafe {
            rb_sys::rb_nogvl(
                Some(run_job_of(&job)),
                &mut job as *mut _ as *mut c_void,
                Some(unblock),
                &u as *const _ as *mut c_void,
                flags,
            );
        }
        if let Some(e) = take_escape(ruby) {
            break Err(e);
        }
        let ran = job.f.is_none();
        if u.fired.swap(false, Ordering::SeqCst) || !ran {
            // Deliver the pending interrupt here, with no Rust frame between
            // Ruby and the `protect`.
            if let Err(e) = protect(|| {
                unsafe { rb_sys::rb_thread_check_ints() };
                ruby.qnil().as_value().as_raw()
            }) {
                if let (ErrorType::Exception(exc), false) = (e.error_type(), prev.is_null()) {
                    let c = keep_cause(ruby, *exc);
                    INTERRUPT_EXC.with(|i| *i.borrow_mut() = Some(c));
                }
                break Err(e);
            }
        }
        if ran {
            break Ok(());
        }
    };
    CURRENT_UNBLOCK.with(|c| c.set(prev));
    if prev.is_null() {
        INTERRUPT_EXC.with(|i| i.borrow_mut().take());
    }
    outcome?;
    match job.out.take() {
        Some(Ok(r)) => Ok(r),
        Some(Err(p)) => Err(panic_error(ruby, p)),
        None => Err(Error::new(ruby.exception_runtime_error(), "polyracer internal error: job did not run")),
    }
}

pub(crate) fn run_job_of<F: FnOnce() -> R, R>(_: &Job<F, R>) -> unsafe extern "C" fn(*mut c_void) -> *mut c_void {
    run_job::<F, R>
}

/// Ruby code runs only on Ruby threads: JS that calls a Ruby method from
/// any other thread (core's driver, if the `polyracer-tasks` thread is not
/// running) gets this error instead of a crash.
pub(crate) fn ruby_thread() -> Result<(), polyracer::HostError> {
    // SAFETY: a plain query of the current thread.
    if unsafe { rb_sys::ruby_native_thread_p() } != 0 {
        Ok(())
    } else {
        Err(polyracer::HostError::new(
            "a Ruby callback was called from a thread that is not a Ruby thread (is the polyracer-tasks thread \
             running?)",
        ))
    }
}

/// Runs `f` holding the GVL, from a thread that released it in `without_gvl`
/// (callbacks from JS arrive on that thread).
pub(crate) fn with_gvl<R>(f: impl FnOnce(&Ruby) -> R) -> R {
    // SAFETY: plain query of the current thread's state.
    if let Ok(ruby) = Ruby::get() {
        return f(&ruby);
    }
    let g = move || f(&unsafe { Ruby::get_unchecked() });
    let mut job = Job { f: Some(g), out: None };
    // SAFETY: `job` outlives the call; `run_job` matches its type.
    unsafe {
        rb_sys::rb_thread_call_with_gvl(Some(run_job_of(&job)), &mut job as *mut _ as *mut c_void);
    }
    match job.out.take() {
        Some(Ok(r)) => r,
        Some(Err(p)) => std::panic::resume_unwind(p),
        None => panic!("the Ruby callback did not run"),
    }
}
