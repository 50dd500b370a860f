//! JS → host calls: they run right here, on the calling thread.

use std::ffi::c_void;
use std::rc::Rc;
use std::sync::atomic::Ordering;

use super::heap_limits::{interrupt_callback, InterruptCallback};
use super::{state, State, Termination};
use crate::context::HostFn;
use crate::convert;
use crate::value::{HostError, Value};

/// Makes a JS error for a host error and remembers the host's payload so it
/// can be returned as the cause if JS does not catch it.
pub(super) fn host_error_value<'s>(
    scope: &mut v8::PinScope<'s, '_>,
    st: &State,
    e: HostError,
) -> v8::Local<'s, v8::Value> {
    let msg = v8::String::new(scope, &e.message).unwrap_or_else(|| v8::String::empty(scope));
    let err = convert::make_error(scope, &e.name, msg);
    if let (Some(payload), Ok(obj)) = (e.payload, v8::Local::<v8::Object>::try_from(err)) {
        let id = st.next_host_error.get();
        st.next_host_error.set(id.wrapping_add(1));
        st.host_errors.borrow_mut().insert(id, payload);
        let key = v8::Local::new(scope, &st.host_error_key);
        let idv = v8::Number::new(scope, id as f64);
        obj.set_private(scope, key, idv.into());
    }
    err
}

/// The rejection of an async host call: [`host_error_value`], with the
/// frames of `site`, the `Error` made when JS made the call (the host
/// settles it later, with no JS on the stack).
pub(super) fn async_host_error<'s>(
    scope: &mut v8::PinScope<'s, '_>,
    st: &State,
    e: HostError,
    site: v8::Local<'s, v8::Object>,
) -> v8::Local<'s, v8::Value> {
    let header = match (e.name.as_str(), e.message.as_str()) {
        (name, "") => name.to_string(),
        ("", message) => message.to_string(),
        (name, message) => format!("{name}: {message}"),
    };
    let err = host_error_value(scope, st, e);
    let Ok(obj) = v8::Local::<v8::Object>::try_from(err) else { return err };
    // `site` was made with no message, so its stack is `Error` and then
    // the frames: keep the frames, under the rejection's own first line.
    let k = v8::String::new(scope, "stack").unwrap();
    let Some(site_stack) = site.get(scope, k.into()).filter(|s| s.is_string()) else { return err };
    let site_stack = site_stack.to_rust_string_lossy(scope);
    let frames = site_stack.find("\n    at ").map_or("", |at| &site_stack[at..]);
    if let Some(stack) = v8::String::new(scope, &format!("{header}{frames}")) {
        obj.set(scope, k.into(), stack.into());
    }
    err
}

/// JS → host function: converts the arguments, runs the function on this
/// thread (it may call back into JS, nested) and converts its result.
pub(super) fn host_trampoline(
    scope: &mut v8::PinScope,
    args: v8::FunctionCallbackArguments,
    mut rv: v8::ReturnValue<v8::Value>,
) {
    let st = state(scope);
    let data = args.data().number_value(scope).unwrap_or(0.0) as usize;
    let (fn_id, is_async) = (data / 2, data % 2 == 1);
    if let Some(HostFn::Raw(f)) = st.shared.host_fn(fn_id) {
        return raw_call(scope, &st, &args, &mut rv, &*f);
    }
    let mut values = Vec::with_capacity(args.length() as usize);
    for i in 0..args.length() {
        let arg = v8::Local::new(scope, args.get(i));
        match crate::transfer::to_value(scope, &st, arg, false) {
            Ok(v) => values.push(v),
            Err(e) => {
                throw_error(scope, "TypeError", &format!("argument {i}: {e}"));
                return;
            }
        }
    }
    if st.depth.get() == 0 {
        // Only reachable if JS runs outside a call, which the runtime never
        // does; refuse rather than run host code the host does not expect.
        let msg = v8::String::new(scope, "host function called outside a call").unwrap();
        let err = v8::Exception::error(scope, msg);
        scope.throw_exception(err);
        return;
    }
    let completion = if is_async {
        let Some(resolver) = v8::PromiseResolver::new(scope) else {
            return;
        };
        let id = st.next_resolver.get();
        st.next_resolver.set(id.wrapping_add(1));
        // The JS stack is here now, not when the host settles the call.
        let empty = v8::String::empty(scope);
        let Ok(site) = v8::Local::<v8::Object>::try_from(v8::Exception::error(scope, empty)) else {
            return;
        };
        st.resolvers.borrow_mut().insert(id, (v8::Global::new(scope, resolver), v8::Global::new(scope, site)));
        rv.set(resolver.get_promise(scope).into());
        Some(id)
    } else {
        None
    };
    let result = st.shared.run_host_fn(fn_id, values, completion);
    if is_async {
        if let Err(e) = result {
            // The host function failed before it got going: reject.
            if let Some((r, site)) = completion.and_then(|id| st.resolvers.borrow_mut().remove(&id)) {
                let r = v8::Local::new(scope, &r);
                let site = v8::Local::new(scope, &site);
                let err = async_host_error(scope, &st, e, site);
                r.reject(scope, err);
            }
        }
        return;
    }
    match result {
        Ok(v) => match crate::transfer::value_to_v8(scope, &st, &v) {
            Ok(v) => rv.set(v),
            Err(e) => throw_error(scope, "TypeError", &format!("host function result: {e}")),
        },
        Err(e) => throw_host_error(scope, &st, e),
    }
}

/// A host function that reads its own arguments through the binding's sink
/// and sets its result through the binding's source
/// ([`Context::expose_raw`](crate::Context::expose_raw)): no `Value` is
/// built either way.
pub struct HostCall<'a, 's, 'p> {
    scope: &'a mut v8::PinScope<'s, 'p>,
    st: &'a State,
    args: &'a v8::FunctionCallbackArguments<'a>,
    ret: Option<v8::Local<'s, v8::Value>>,
}

impl HostCall<'_, '_, '_> {
    /// The number of arguments JS passed.
    pub fn len(&self) -> usize {
        self.args.length().max(0) as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Converts argument `i` (`undefined` past the end) into `sink`. A
    /// conversion failure is a `TypeError` naming the argument.
    pub fn arg_into(&mut self, i: usize, sink: &mut dyn crate::transfer::Sink) -> Result<(), HostError> {
        let arg = v8::Local::new(self.scope, self.args.get(i as i32));
        crate::transfer::to_host(self.scope, self.st, arg, false, sink)
            .map_err(|e| HostError::new(format!("argument {i}: {e}")).with_name("TypeError"))
    }

    /// Sets the function's result, read through `source`. A conversion
    /// failure is a `TypeError`.
    pub fn set_return(
        &mut self,
        source: &mut dyn crate::transfer::Source,
        value: &crate::transfer::Arg,
    ) -> Result<(), HostError> {
        let v = crate::transfer::source_to_v8(self.scope, self.st, source, value)
            .map_err(|e| HostError::new(format!("host function result: {e}")).with_name("TypeError"))?;
        self.ret = Some(v);
        Ok(())
    }
}

fn raw_call<'s>(
    scope: &mut v8::PinScope<'s, '_>,
    st: &State,
    args: &v8::FunctionCallbackArguments,
    rv: &mut v8::ReturnValue<v8::Value>,
    f: &crate::context::RawFn,
) {
    if st.depth.get() == 0 {
        throw_error(scope, "Error", "host function called outside a call");
        return;
    }
    let ctx = crate::Context::borrowed(st.shared.clone());
    let mut call = HostCall { scope: &mut *scope, st, args, ret: None };
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&ctx, &mut call)));
    let ret = call.ret;
    match outcome {
        Ok(Ok(())) => {
            if let Some(r) = ret {
                rv.set(r);
            }
        }
        Ok(Err(e)) => throw_host_error(scope, st, e),
        Err(p) => {
            throw_host_error(scope, st, HostError::new(format!("host function panicked: {}", panic_message(&*p))))
        }
    }
}

/// The text of a panic's payload.
pub(crate) fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

/// Calls a host function from runtime code (the module resolver), on this
/// thread, during a call.
pub(crate) fn call_host(st: &State, fn_id: usize, args: Vec<Value>) -> Result<Value, HostError> {
    if st.depth.get() == 0 {
        return Err(HostError::new("no call is running"));
    }
    st.shared.run_host_fn(fn_id, args, None)
}

pub(crate) fn throw_error(scope: &mut v8::PinScope, name: &str, msg: &str) {
    let msg = v8::String::new(scope, msg).unwrap_or_else(|| v8::String::empty(scope));
    let err = convert::make_error(scope, name, msg);
    scope.throw_exception(err);
}

pub(crate) fn throw_host_error(scope: &mut v8::PinScope, st: &State, e: HostError) {
    let err = host_error_value(scope, st, e);
    scope.throw_exception(err);
}

/// Requested every 50 ms by the watchdog while a call runs: runs the
/// binding's wait hook here, on the calling thread (Python's signal
/// handlers, Ruby's pending interrupts), and stops the call if it asks.
unsafe extern "C" fn run_wait_hook(isolate: v8::UnsafeRawIsolatePtr, request_seq: *mut c_void) {
    // SAFETY: V8 runs interrupts on the locked isolate's thread.
    let isolate = unsafe { v8::Isolate::from_raw_isolate_ptr(isolate) };
    let Some(st) = isolate.get_slot::<Rc<State>>().cloned() else { return };
    if st.shared.exec.request_seq.load(Ordering::SeqCst) != request_seq as usize {
        return; // requested during an earlier call
    }
    if crate::context::wait_hook().is_some_and(|h| h()) {
        st.shared.interrupt(Termination::Terminated);
    }
}

pub(crate) fn wait_hook_callback() -> InterruptCallback {
    interrupt_callback(run_wait_hook)
}
