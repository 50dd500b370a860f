//! Awaiting JS promises from async hosts, without a thread per await and
//! without holding the context while the promise is pending.
//!
//! `eval_async`/`call_async`/`await_async` run the call on the calling
//! thread (briefly) and, if its result is a pending promise, register an
//! await and return a [`JsFuture`]. The promise settles whenever the
//! context's event loop next turns: another call, a thread blocked in
//! [`JsFuture::wait`], the binding's loop running
//! [`Context::run_pending_tasks`] when its task scheduler is asked, or
//! polyracer's driver thread (see `runtime::driver`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use crate::context::{Context, EvalOptions};
use crate::error::{Error, Result};
use crate::handle::JsHandle;
use crate::protocol::{AwaitMode, CallTarget, HandleOp, Out, Request};
use crate::runtime::AwaitSlot;
use crate::value::Value;

/// A pending JS result; `.await` it, [`wait`](JsFuture::wait) for it, or
/// hand it a callback with [`on_settled`](JsFuture::on_settled).
///
/// Dropping it (or [`cancel`](JsFuture::cancel)) withdraws the interest in
/// the promise; the context is unaffected. If the context is disposed
/// first, it resolves to [`Error::Disposed`]; `Context::terminate` resolves
/// it to [`Error::Terminated`]; an await past its timeout to
/// [`Error::Timeout`].
pub struct JsFuture {
    slot: Arc<AwaitSlot>,
    detached: bool,
}

impl std::fmt::Debug for JsFuture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsFuture").field("ready", &self.is_ready()).finish_non_exhaustive()
    }
}

impl JsFuture {
    pub(crate) fn from_slot(slot: Arc<AwaitSlot>) -> JsFuture {
        JsFuture { slot, detached: false }
    }

    fn from_out(out: Result<Out>) -> JsFuture {
        match out {
            Ok(Out::Await(slot)) => JsFuture::from_slot(slot),
            Ok(other) => JsFuture::from_slot(AwaitSlot::ready(other.into_value())),
            Err(e) => JsFuture::from_slot(AwaitSlot::ready(Err(e))),
        }
    }

    /// True once the result is available (or was handed to a callback).
    pub fn is_ready(&self) -> bool {
        self.slot.is_finished()
    }

    /// Blocks this thread until the promise settles. The thread runs the
    /// context's event loop whenever work is due (so host functions called
    /// meanwhile run here), holding the context only while it does: other
    /// threads' calls run in between.
    pub fn wait(mut self) -> Result<Value> {
        if let Some(r) = self.slot.poll_take(None) {
            self.detached = true;
            return r;
        }
        let Some(shared) = self.slot.shared.upgrade() else {
            return Err(Error::Disposed("the context is disposed".into()));
        };
        // Timed out, interrupted or disposed while waiting: dropping `self`
        // withdraws the await.
        shared.drive(Some(&self.slot), self.slot.deadline)?;
        let r = self.slot.poll_take(None).unwrap_or(Err(Error::Terminated));
        self.detached = true;
        r
    }

    /// Calls `f` with the result when the promise settles (now, if it has),
    /// on the thread that settles it, after that thread has released the
    /// context. The future stays the owner: dropping it before then
    /// cancels, unless it is [`detach`](JsFuture::detach)ed.
    pub fn on_settled(&self, f: impl FnOnce(Result<Value>) + Send + 'static) {
        self.slot.on_settled(Box::new(f));
    }

    /// Keeps the await alive without an owner (for use with `on_settled`).
    pub fn detach(mut self) {
        self.detached = true;
    }

    /// Withdraws the interest in the promise; the context stays usable.
    pub fn cancel(self) {
        drop(self);
    }
}

impl Drop for JsFuture {
    fn drop(&mut self) {
        if !self.detached {
            self.slot.cancel();
        }
    }
}

impl Future for JsFuture {
    type Output = Result<Value>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        match self.slot.poll_take(Some(cx.waker())) {
            Some(r) => {
                self.detached = true;
                Poll::Ready(r)
            }
            None => Poll::Pending,
        }
    }
}

impl Context {
    /// Evaluates now, on this thread, and returns a future of the value,
    /// awaiting a promise result without holding the context.
    pub fn eval_async(&self, source: &str, options: EvalOptions) -> JsFuture {
        let req = Request::Eval {
            source,
            filename: options.filename.as_deref(),
            as_handle: options.as_handle,
            await_promise: AwaitMode::Defer,
            sink: None,
        };
        JsFuture::from_out(self.shared_ref().request(req, options.timeout))
    }

    /// Calls now (see [`Context::call`]) and returns a future of the
    /// result, awaiting a promise result without holding the context.
    pub fn call_async<'a>(
        &self,
        target: impl Into<crate::context::Target<'a>>,
        args: &[Value],
        options: EvalOptions,
    ) -> JsFuture {
        let target = match target.into() {
            crate::context::Target::Handle(h) => match self.owned_handle_id(h) {
                Ok(id) => CallTarget::Handle(id),
                Err(e) => return JsFuture::from_out(Err(e)),
            },
            crate::context::Target::Source(s) => CallTarget::Source(s),
        };
        let req = Request::Call {
            target,
            args: crate::transfer::Args::Values(args),
            as_handle: options.as_handle,
            await_promise: AwaitMode::Defer,
            sink: None,
        };
        JsFuture::from_out(self.shared_ref().request(req, options.timeout))
    }
}

impl JsHandle {
    /// A future of the promise's value (it need not be pending).
    pub fn await_async(&self, timeout: Option<Duration>) -> JsFuture {
        let req = Request::Handle { id: self.0.id, op: HandleOp::Await { defer: true }, sink: None };
        JsFuture::from_out(self.0.shared.request(req, timeout))
    }
}
