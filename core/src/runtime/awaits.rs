//! Awaiting a promise without holding the context.
//!
//! An await registers an [`AwaitSlot`] and attaches two reaction functions
//! to the promise. Whichever thread happens to run the microtask that
//! settles it (a waiter pumping the event loop, another thread's call, the
//! driver, a binding's own loop) converts the value right there, under the
//! lock, and queues it; the thread delivers it once it has released the
//! lock, so a waiter's callback never runs with the isolate locked. The
//! slot table lives in `Shared`, not in the isolate, so cancelling an await
//! or rejecting every await on disposal needs no lock.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, Weak};
use std::task::Waker;
use std::time::Instant;

use super::exceptions::exception;
use super::shared::lock;
use super::{state, Shared, State};
use crate::error::{Error, Result};
use crate::value::Value;

type OnSettled = Box<dyn FnOnce(Result<Value>) + Send>;

#[derive(Default)]
struct SlotInner {
    result: Option<Result<Value>>,
    waker: Option<Waker>,
    on_settled: Option<OnSettled>,
    finished: bool,
}

/// One await's interest in a promise.
pub(crate) struct AwaitSlot {
    pub(crate) id: u32,
    pub(crate) as_handle: bool,
    /// The await's own deadline (the driver rejects it with `Timeout`).
    pub(crate) deadline: Option<Instant>,
    pub(crate) shared: Weak<Shared>,
    inner: Mutex<SlotInner>,
}

impl AwaitSlot {
    /// A slot that already has its result (no promise, or it had settled).
    pub(crate) fn ready(result: Result<Value>) -> Arc<AwaitSlot> {
        let slot = Arc::new(AwaitSlot {
            id: 0,
            as_handle: false,
            deadline: None,
            shared: Weak::new(),
            inner: Mutex::new(SlotInner::default()),
        });
        slot.settle(result);
        slot
    }

    /// Delivers the result: to the callback if one is set, else kept for
    /// `take` and the future's waker. Only the first result counts.
    pub(crate) fn settle(&self, result: Result<Value>) {
        let mut g = lock(&self.inner);
        if g.finished {
            return;
        }
        g.finished = true;
        if let Some(cb) = g.on_settled.take() {
            drop(g);
            cb(result);
            return;
        }
        g.result = Some(result);
        let waker = g.waker.take();
        drop(g);
        if let Some(w) = waker {
            w.wake();
        }
    }

    pub(crate) fn is_finished(&self) -> bool {
        lock(&self.inner).finished
    }

    /// The result, once; `None` while pending (the waker is kept).
    pub(crate) fn poll_take(&self, waker: Option<&Waker>) -> Option<Result<Value>> {
        let mut g = lock(&self.inner);
        if let Some(r) = g.result.take() {
            return Some(r);
        }
        if g.finished {
            // Taken before, or handed to a callback.
            return Some(Err(Error::InvalidArgument("the await's result was already taken".into())));
        }
        if let Some(w) = waker {
            g.waker = Some(w.clone());
        }
        None
    }

    /// Hands the result to `f` (now, if it is already there).
    pub(crate) fn on_settled(&self, f: OnSettled) {
        let mut g = lock(&self.inner);
        if let Some(r) = g.result.take() {
            drop(g);
            f(r);
            return;
        }
        if g.finished {
            return;
        }
        g.on_settled = Some(f);
    }

    /// Withdraws the interest: the promise may still settle, but nobody is
    /// told. The context stays usable.
    pub(crate) fn cancel(&self) {
        {
            let mut g = lock(&self.inner);
            if g.finished {
                return;
            }
            g.finished = true;
            g.on_settled = None;
            g.waker = None;
        }
        if let Some(s) = self.shared.upgrade() {
            lock(&s.awaits.table).remove(&self.id);
        }
    }
}

/// The awaits of one context (in `Shared`).
#[derive(Default)]
pub(crate) struct Awaits {
    pub(crate) table: Mutex<std::collections::HashMap<u32, Arc<AwaitSlot>>>,
    next_id: Mutex<u32>,
    /// Settled under the lock, delivered after it is released.
    settled: Mutex<Vec<(Arc<AwaitSlot>, Result<Value>)>>,
    pub(crate) has_settled: std::sync::atomic::AtomicBool,
}

impl Awaits {
    pub(crate) fn live(&self) -> bool {
        !lock(&self.table).is_empty()
    }

    /// The earliest deadline of a live await.
    pub(crate) fn earliest_deadline(&self) -> Option<Instant> {
        lock(&self.table).values().filter_map(|s| s.deadline).min()
    }

    /// Rejects the awaits whose deadline has passed with `Timeout`.
    pub(crate) fn expire(&self, now: Instant) {
        let expired: Vec<_> = {
            let mut t = lock(&self.table);
            let ids: Vec<u32> = t.values().filter(|s| s.deadline.is_some_and(|d| d <= now)).map(|s| s.id).collect();
            ids.into_iter().filter_map(|id| t.remove(&id)).collect()
        };
        for s in expired {
            s.settle(Err(Error::Timeout));
        }
    }

    /// Rejects every live await (disposal, `terminate`).
    pub(crate) fn reject_all(&self, err: impl Fn() -> Error) {
        let all: Vec<_> = lock(&self.table).drain().map(|(_, s)| s).collect();
        for s in all {
            s.settle(Err(err()));
        }
    }

    /// Hands settled results to their waiters (call without the lock).
    pub(crate) fn deliver(&self) -> bool {
        if !self.has_settled.load(Ordering::Acquire) || !self.has_settled.swap(false, Ordering::AcqRel) {
            return false;
        }
        let done = std::mem::take(&mut *lock(&self.settled));
        for (slot, r) in done {
            slot.settle(r);
        }
        true
    }

    fn next_id(&self) -> u32 {
        let mut n = lock(&self.next_id);
        *n = n.wrapping_add(1).max(1);
        *n
    }
}

/// Registers an await on `promise` (pending) and returns its slot.
pub(crate) fn register(
    scope: &mut v8::PinScope,
    st: &State,
    promise: v8::Local<v8::Promise>,
    as_handle: bool,
    deadline: Option<Instant>,
) -> Result<Arc<AwaitSlot>> {
    let shared = &st.shared;
    let id = shared.awaits.next_id();
    let slot = Arc::new(AwaitSlot {
        id,
        as_handle,
        deadline,
        shared: Arc::downgrade(shared),
        inner: Mutex::new(SlotInner::default()),
    });
    let data: v8::Local<v8::Value> = v8::Integer::new_from_unsigned(scope, id).into();
    let ok = v8::Function::builder(on_fulfilled).data(data).build(scope);
    let err = v8::Function::builder(on_rejected).data(data).build(scope);
    let (Some(ok), Some(err)) = (ok, err) else {
        return Err(st.termination_error_or(Error::Conversion("cannot attach to the promise".into())));
    };
    lock(&shared.awaits.table).insert(id, slot.clone());
    if promise.then2(scope, ok, err).is_none() {
        lock(&shared.awaits.table).remove(&id);
        return Err(st.termination_error_or(Error::Conversion("cannot attach to the promise".into())));
    }
    shared.await_registered(deadline);
    Ok(slot)
}

fn take_slot(
    scope: &mut v8::PinScope,
    args: &v8::FunctionCallbackArguments,
) -> Option<(std::rc::Rc<State>, Arc<AwaitSlot>)> {
    let id = args.data().uint32_value(scope)?;
    let st = state(scope);
    let slot = lock(&st.shared.awaits.table).remove(&id)?;
    Some((st, slot))
}

fn queue(st: &State, slot: Arc<AwaitSlot>, r: Result<Value>) {
    lock(&st.shared.awaits.settled).push((slot, r));
    st.shared.awaits.has_settled.store(true, Ordering::Release);
}

fn on_fulfilled<'s>(
    scope: &mut v8::PinScope<'s, '_>,
    args: v8::FunctionCallbackArguments<'s>,
    _rv: v8::ReturnValue<v8::Value>,
) {
    let Some((st, slot)) = take_slot(scope, &args) else { return };
    let r = crate::transfer::to_value(scope, &st, args.get(0), slot.as_handle);
    queue(&st, slot, r);
}

fn on_rejected<'s>(
    scope: &mut v8::PinScope<'s, '_>,
    args: v8::FunctionCallbackArguments<'s>,
    _rv: v8::ReturnValue<v8::Value>,
) {
    let Some((st, slot)) = take_slot(scope, &args) else { return };
    let reason = args.get(0);
    let msg = v8::Exception::create_message(scope, reason);
    let e = exception(scope, Some(&st), reason, Some(msg));
    queue(&st, slot, Err(Error::Js(Box::new(e))));
}
