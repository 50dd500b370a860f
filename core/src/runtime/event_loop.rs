//! The event loop: promises awaited by a call, timers and async host
//! completions, on the calling thread with the isolate locked.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::exceptions::exception;
use super::host_calls::async_host_error;
use super::timers::run_due_timers;
use super::State;
use crate::error::{Error, JsException, Result};
use crate::value::{HostError, Value};

/// How long an await with nothing left that could settle the promise keeps
/// pumping V8's platform tasks (async WebAssembly compilation) before it
/// reports that the promise can never settle.
pub(crate) const STALL_GRACE: Duration = Duration::from_millis(200);

/// V8's foreground tasks, due timers and finished async host calls
/// ("queued for the next wait"); run before every top-level call.
pub(super) fn run_pending(scope: &mut v8::PinScope, st: &State) -> Result<bool> {
    // V8's own foreground tasks first (a WebAssembly compile that finished
    // on a worker thread settles its promise here), so code that polls
    // with plain calls sees them progress. Cheap when there are none.
    let platform = &crate::engine::engine().platform;
    let mut pumped = false;
    while v8::Platform::pump_message_loop(platform, scope, false) {
        pumped = true;
    }
    if pumped {
        scope.perform_microtask_checkpoint();
        if st.interrupted() {
            return Err(st.termination_error());
        }
    }
    let mut ran = settle_completions(scope, st)? || pumped;
    ran |= run_due_timers(scope, st)?;
    Ok(ran)
}

/// Runs the event loop until `promise` settles.
pub(crate) fn await_promise_local<'s>(
    scope: &mut v8::PinScope<'s, '_>,
    st: &State,
    promise: v8::Local<'s, v8::Promise>,
    deadline: Option<Instant>,
) -> Result<v8::Local<'s, v8::Value>> {
    event_loop(scope, st, deadline, Some(promise))?;
    match promise.state() {
        v8::PromiseState::Fulfilled => Ok(promise.result(scope)),
        v8::PromiseState::Rejected => {
            let reason = promise.result(scope);
            let msg = v8::Exception::create_message(scope, reason);
            Err(Error::Js(Box::new(exception(scope, Some(st), reason, Some(msg)))))
        }
        v8::PromiseState::Pending => Err(never_settles()),
    }
}

/// The error for an await that nothing could ever settle.
pub(crate) fn never_settles() -> Error {
    Error::Js(Box::new(JsException {
        name: "Error".into(),
        message: "the promise can never settle: no timers, async host calls or tasks are pending".into(),
        stack: String::new(),
        value: Box::new(Value::Undefined),
        frames: Vec::new(),
        filename: None,
        line: None,
        column: None,
        report: "Error: the promise can never settle: no timers, async host calls or tasks are pending\n".into(),
        cause: None,
    }))
}

/// Turns the event loop until `until` settles (or, without a promise, until
/// there is nothing left to do). Returns early when nothing could ever
/// settle the promise.
pub(super) fn event_loop(
    scope: &mut v8::PinScope,
    st: &State,
    deadline: Option<Instant>,
    until: Option<v8::Local<v8::Promise>>,
) -> Result<()> {
    let platform = &crate::engine::engine().platform;
    let mut stalled_since: Option<Instant> = None;
    loop {
        scope.perform_microtask_checkpoint();
        if st.interrupted() {
            return Err(st.termination_error());
        }
        if let Some(p) = until {
            if p.state() != v8::PromiseState::Pending {
                return Ok(());
            }
        }
        let mut progressed = run_pending(scope, st)?;
        while v8::Platform::pump_message_loop(platform, scope, false) {
            progressed = true;
        }
        if progressed {
            stalled_since = None;
            continue;
        }
        let next_timer = st.timers.borrow().queue.keys().next().map(|(t, _)| *t);
        let outstanding = !st.resolvers.borrow().is_empty();
        if next_timer.is_none() && !outstanding {
            if until.is_none() {
                return Ok(());
            }
            // Nothing of ours can settle it; give V8's own tasks a moment.
            let since = *stalled_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= STALL_GRACE {
                return Ok(());
            }
        }
        let mut wake = next_timer;
        if stalled_since.is_some() {
            wake = Some(Instant::now() + Duration::from_millis(5));
        }
        if let Some(d) = deadline {
            if Instant::now() >= d {
                return Err(Error::Timeout);
            }
            wake = Some(wake.map_or(d, |w| w.min(d)));
        }
        st.shared.wait_for_work(wake);
    }
}

fn settle_completions(scope: &mut v8::PinScope, st: &State) -> Result<bool> {
    if !st.shared.has_completions.load(Ordering::SeqCst) || !st.shared.has_completions.swap(false, Ordering::SeqCst) {
        return Ok(false);
    }
    let done = std::mem::take(&mut *st.shared.completions.lock().unwrap_or_else(|e| e.into_inner()));
    let mut ran = false;
    for (id, result) in done {
        let Some((resolver, site)) = st.resolvers.borrow_mut().remove(&id) else {
            continue;
        };
        let resolver = v8::Local::new(scope, &resolver);
        let site = v8::Local::new(scope, &site);
        match result {
            Ok(v) => match crate::transfer::value_to_v8(scope, st, &v) {
                Ok(v) => {
                    resolver.resolve(scope, v);
                }
                Err(e) => {
                    let e = HostError::new(e.to_string()).with_name("TypeError");
                    let err = async_host_error(scope, st, e, site);
                    resolver.reject(scope, err);
                }
            },
            Err(e) => {
                let err = async_host_error(scope, st, e, site);
                resolver.reject(scope, err);
            }
        }
        ran = true;
    }
    scope.perform_microtask_checkpoint();
    if st.interrupted() {
        return Err(st.termination_error());
    }
    Ok(ran)
}
