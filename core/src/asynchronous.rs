//! Runtime-agnostic futures for awaiting JS work from async hosts.
//!
//! JS runs only while a host thread waits on the context (host callbacks
//! need a thread to run on), so an async await hands the blocking wait to a
//! helper thread and completes a `Future` when it finishes. Host functions
//! called meanwhile run on that helper thread. Any executor can poll the
//! future (tokio, async-std, a binding's event loop integration).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll, Waker};
use std::time::Duration;

use crate::context::{Context, EvalOptions};
use crate::error::{Error, Result};
use crate::handle::JsHandle;
use crate::value::Value;

#[derive(Default)]
struct Slot {
    result: Option<Result<Value>>,
    waker: Option<Waker>,
}

/// The result of JS work running in the background; `.await` it. Dropping
/// it does not cancel the work (use [`Context::terminate`]).
pub struct JsFuture {
    slot: Arc<Mutex<Slot>>,
}

impl std::fmt::Debug for JsFuture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsFuture").finish_non_exhaustive()
    }
}

impl JsFuture {
    fn spawn(work: impl FnOnce() -> Result<Value> + Send + 'static) -> JsFuture {
        let slot = Arc::new(Mutex::new(Slot::default()));
        let done = slot.clone();
        let finish = move |r: Result<Value>| {
            let mut s = done.lock().unwrap_or_else(|e| e.into_inner());
            s.result = Some(r);
            if let Some(w) = s.waker.take() {
                w.wake();
            }
        };
        if let Err(e) = std::thread::Builder::new().name("polyracer-await".into()).spawn(move || finish(work())) {
            let mut s = slot.lock().unwrap_or_else(|e| e.into_inner());
            s.result = Some(Err(Error::InvalidArgument(format!("cannot start a helper thread: {e}"))));
        }
        JsFuture { slot }
    }

    /// True once the result is available.
    pub fn is_ready(&self) -> bool {
        self.slot.lock().unwrap_or_else(|e| e.into_inner()).result.is_some()
    }
}

impl Future for JsFuture {
    type Output = Result<Value>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let mut s = self.slot.lock().unwrap_or_else(|e| e.into_inner());
        match s.result.take() {
            Some(r) => Poll::Ready(r),
            None => {
                s.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

impl Context {
    /// Evaluates in the background, awaiting a promise result, and returns a
    /// future of the value.
    pub fn eval_async(&self, source: &str, options: EvalOptions) -> JsFuture {
        let ctx = self.clone();
        let source = source.to_owned();
        JsFuture::spawn(move || ctx.eval_with(&source, EvalOptions { await_promise: true, ..options }))
    }

    /// Calls in the background (see [`Context::call`]), awaiting a promise
    /// result.
    pub fn call_async(&self, target: &str, args: Vec<Value>, options: EvalOptions) -> JsFuture {
        let ctx = self.clone();
        let target = target.to_owned();
        JsFuture::spawn(move || ctx.call_with(target.as_str(), &args, EvalOptions { await_promise: true, ..options }))
    }
}

impl JsHandle {
    /// Awaits a promise handle in the background.
    pub fn await_async(&self, timeout: Option<Duration>) -> JsFuture {
        let h = self.clone();
        JsFuture::spawn(move || h.await_promise(timeout))
    }
}
