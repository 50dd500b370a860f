//! What a call does: one `Request`, run with the isolate locked.

use std::io::Write;
use std::time::Instant;

use super::event_loop::{await_promise_local, event_loop, run_pending};
use super::exceptions::caught;
use super::host_calls::host_trampoline;
use super::State;
use crate::context::HeapStats;
use crate::error::{Error, Result};
use crate::handle::HandleKind;
use crate::protocol::{AwaitMode, CallTarget, HandleOp, Out, Request, SinkRef};
use crate::transfer::{self, Args};
use crate::value::Value;

/// Sources up to this size are kept compiled for repeated `eval`s: a
/// compile that hits V8's own compilation cache still costs ~0.9 µs here.
/// The script is kept bound to the context, not just compiled: rebinding
/// creates a new top-level function with fresh feedback each time, so a hot
/// loop evaluated repeatedly was interpreted on every run and kept
/// requesting background (OSR) compilations that were thrown away — one
/// context then used both cores and two contexts could not scale.
const SCRIPT_CACHE_MAX_SOURCE: usize = 4096;

const SCRIPT_CACHE_MAX_ENTRIES: usize = 256;

/// Runs a top-level call (one not made from inside a host callback).
pub(super) fn top_level(scope: &mut v8::PinScope, st: &State, req: Request, deadline: Option<Instant>) -> Result<Out> {
    st.shared.begin_call(deadline);
    st.depth.set(1);
    st.process_releases();
    // Requests that only read or release state are not failed for memory
    // the context already holds (see below).
    let runs_js = !matches!(
        req,
        Request::HeapStats | Request::LowMemoryNotification | Request::HeapSnapshot { .. } | Request::Expose { .. }
    );
    let mut out = run_pending(scope, st).and_then(|ran| {
        st.ran_pending.set(ran);
        handle(scope, st, req, deadline)
    });
    if out.is_ok() && !st.interrupted() && !st.checkpointed.replace(false) {
        scope.perform_microtask_checkpoint();
    }
    if st.interrupted() && matches!(out, Err(Error::Terminated)) {
        out = Err(st.termination_error());
    }
    // Page-allocator memory (resizable buffers, WebAssembly memories) is
    // seen only in V8's totals: a call that leaves the context over its
    // limit fails (`memory` module).
    if let Some(budget) = st.budget.as_ref().filter(|_| runs_js) {
        if !matches!(out, Err(Error::OutOfMemory)) && crate::memory::over_limit(scope, budget) {
            out = Err(Error::OutOfMemory);
        }
    }
    st.depth.set(0);
    st.host_errors.borrow_mut().clear();
    st.publish_pending();
    st.shared.finish_call();
    out
}

pub(super) fn handle(scope: &mut v8::PinScope, st: &State, req: Request, deadline: Option<Instant>) -> Result<Out> {
    match req {
        Request::Eval { source, filename, as_handle, await_promise, sink } => {
            let v = eval_cached(scope, st, source, filename)?;
            finish(scope, st, v, as_handle, await_promise, deadline, sink)
        }
        Request::Call { target, args, as_handle, await_promise, sink } => {
            let (f, this) = resolve_target(scope, st, target)?;
            let v = call_function(scope, st, f, this, args)?;
            finish(scope, st, v, as_handle, await_promise, deadline, sink)
        }
        Request::SetGlobal { name, value } => {
            let mut one = smallvec::SmallVec::new();
            transfer::to_v8(scope, st, value, &mut one)?;
            let v = one.pop().unwrap_or_else(|| v8::undefined(scope).into());
            let (parent, last) = walk_parent(scope, &name, true)?;
            let key = v8::String::new(scope, last).unwrap();
            parent.set(scope, key.into(), v);
            Ok(Out::Unit)
        }
        Request::Expose { name, fn_id, is_async } => {
            let data = v8::Number::new(scope, (fn_id * 2 + usize::from(is_async)) as f64);
            let f = v8::Function::builder(host_trampoline)
                .data(data.into())
                .build(scope)
                .ok_or_else(|| Error::InvalidArgument("cannot create the host function".into()))?;
            let (parent, last) = walk_parent(scope, &name, true)?;
            let key = v8::String::new(scope, last).unwrap();
            f.set_name(key);
            parent.set(scope, key.into(), f.into());
            Ok(Out::Unit)
        }
        Request::Handle { id, op, sink } => handle_op(scope, st, id, op, deadline, sink),
        Request::RunEventLoop => {
            event_loop(scope, st, deadline, None)?;
            Ok(Out::Unit)
        }
        // `top_level` already ran what was due (V8's tasks, timers and
        // completions): report whether there was anything.
        Request::RunPending => Ok(Out::Value(Value::Bool(st.ran_pending.get()))),
        Request::HeapStats => {
            let s = scope.get_heap_statistics();
            Ok(Out::Stats(Box::new(HeapStats {
                total_heap_size: s.total_heap_size(),
                total_heap_size_executable: s.total_heap_size_executable(),
                total_physical_size: s.total_physical_size(),
                total_available_size: s.total_available_size(),
                used_heap_size: s.used_heap_size(),
                heap_size_limit: s.heap_size_limit(),
                malloced_memory: s.malloced_memory(),
                external_memory: s.external_memory(),
                peak_malloced_memory: s.peak_malloced_memory(),
                number_of_native_contexts: s.number_of_native_contexts(),
                number_of_detached_contexts: s.number_of_detached_contexts(),
                total_global_handles_size: s.total_global_handles_size(),
                used_global_handles_size: s.used_global_handles_size(),
            })))
        }
        Request::LowMemoryNotification => {
            scope.low_memory_notification();
            Ok(Out::Unit)
        }
        Request::Microtasks => {
            scope.perform_microtask_checkpoint();
            if st.interrupted() || scope.is_execution_terminating() {
                return Err(st.termination_error());
            }
            Ok(Out::Unit)
        }
        Request::Compile { source, filename, cached_data, produce_cache } => {
            crate::script::compile(scope, st, source, filename, cached_data, produce_cache)
        }
        Request::RunScript { id, as_handle, await_promise, sink } => {
            crate::script::run(scope, st, id, as_handle, await_promise, deadline, sink)
        }
        Request::EvalModule { source, filename, cached_data, produce_cache } => {
            crate::module::eval_module(scope, st, source, filename, cached_data, produce_cache, deadline)
        }
        Request::HeapSnapshot { path } => {
            let file = std::fs::File::create(&path)
                .map_err(|e| Error::InvalidArgument(format!("cannot write {}: {e}", path.display())))?;
            let mut w = std::io::BufWriter::new(file);
            let mut err = None;
            scope.take_heap_snapshot(|chunk| match w.write_all(chunk) {
                Ok(()) => true,
                Err(e) => {
                    err = Some(e);
                    false
                }
            });
            if let Some(e) = err.or_else(|| w.flush().err()) {
                return Err(Error::InvalidArgument(format!("cannot write {}: {e}", path.display())));
            }
            Ok(Out::Unit)
        }
    }
}

pub(crate) fn finish<'s>(
    scope: &mut v8::PinScope<'s, '_>,
    st: &State,
    v: v8::Local<'s, v8::Value>,
    as_handle: bool,
    await_promise: AwaitMode,
    deadline: Option<Instant>,
    sink: Option<SinkRef>,
) -> Result<Out> {
    let mut v = v;
    if await_promise != AwaitMode::No && v.is_promise() {
        let p: v8::Local<v8::Promise> = v.try_into().unwrap();
        if st.depth.get() == 1 || await_promise == AwaitMode::Defer {
            return await_released(scope, st, p, as_handle, deadline, sink);
        }
        v = await_promise_local(scope, st, p, deadline)?;
    } else if st.depth.get() == 1 {
        // Settle what the call queued so a returned promise that is already
        // resolvable shows as fulfilled.
        scope.perform_microtask_checkpoint();
        st.checkpointed.set(true);
        if st.interrupted() {
            return Err(st.termination_error());
        }
    }
    out_as(scope, st, v, as_handle, sink)
}

/// The result of a request: built through the caller's sink, or a `Value`.
fn out_as<'s>(
    scope: &mut v8::PinScope<'s, '_>,
    st: &State,
    v: v8::Local<'s, v8::Value>,
    as_handle: bool,
    sink: Option<SinkRef>,
) -> Result<Out> {
    // A getter or proxy trap that throws while the value is read fails the
    // call with that JS exception (its name, message and stack), not with
    // a conversion error.
    v8::tc_scope!(let tc, scope);
    let out = match sink {
        Some(SinkRef(sink)) => transfer::to_host(tc, st, v, as_handle, sink).map(|()| Out::Unit),
        None => transfer::to_value(tc, st, v, as_handle).map(Out::Value),
    };
    match out {
        Err(Error::Conversion(_)) if tc.has_caught() && tc.can_continue() => Err(caught(tc, st, false)),
        other => other,
    }
}

/// Awaits `p` without holding the context: settles what is already queued
/// and, if it is still pending, registers the await for the caller.
fn await_released<'s>(
    scope: &mut v8::PinScope<'s, '_>,
    st: &State,
    p: v8::Local<'s, v8::Promise>,
    as_handle: bool,
    deadline: Option<Instant>,
    sink: Option<SinkRef>,
) -> Result<Out> {
    scope.perform_microtask_checkpoint();
    if st.depth.get() == 1 {
        st.checkpointed.set(true);
    }
    if st.interrupted() {
        return Err(st.termination_error());
    }
    if p.state() == v8::PromiseState::Pending {
        return Ok(Out::Await(super::awaits::register(scope, st, p, as_handle, deadline)?));
    }
    // Settled already: no loop turns (`await_promise_local` returns at once).
    let v = await_promise_local(scope, st, p, deadline)?;
    out_as(scope, st, v, as_handle, sink)
}

pub(crate) fn origin<'s>(scope: &mut v8::PinScope<'s, '_>, filename: &str, is_module: bool) -> v8::ScriptOrigin<'s> {
    let name = v8::String::new(scope, filename).unwrap();
    v8::ScriptOrigin::new(scope, name.into(), 0, 0, false, 0, None, false, false, is_module, None)
}

pub(crate) fn new_source<'s>(scope: &mut v8::PinScope<'s, '_>, source: &str) -> Result<v8::Local<'s, v8::String>> {
    if source.len() > v8::String::MAX_LENGTH {
        return Err(Error::InvalidArgument(format!(
            "source of {} bytes exceeds V8's maximum string length",
            source.len()
        )));
    }
    v8::String::new(scope, source).ok_or_else(|| Error::InvalidArgument("source too long".into()))
}

/// `eval`: compiles (through the per-context script cache for small
/// sources) and runs.
fn eval_cached<'s>(
    scope: &mut v8::PinScope<'s, '_>,
    st: &State,
    source: &str,
    filename: Option<&str>,
) -> Result<v8::Local<'s, v8::Value>> {
    let cacheable = source.len() <= SCRIPT_CACHE_MAX_SOURCE;
    let cached = if cacheable {
        st.scripts.borrow().get(source).filter(|(f, _)| f.as_deref() == filename).map(|(_, g)| v8::Local::new(scope, g))
    } else {
        None
    };
    let script = match cached {
        Some(s) => s,
        None => {
            let code = new_source(scope, source)?;
            let origin = origin(scope, filename.unwrap_or("<eval>"), false);
            let script = {
                v8::tc_scope!(let tc, scope);
                match v8::Script::compile(tc, code, Some(&origin)) {
                    Some(s) => s,
                    None => return Err(caught(tc, st, true)),
                }
            };
            // Kept bound, so never for a source that may declare top-level
            // lexicals (see `script::Runnable::Rebind`); checked only on a
            // miss, since only such sources are ever in the cache.
            if cacheable && !crate::script::may_declare_lexicals(source) {
                let mut scripts = st.scripts.borrow_mut();
                if scripts.len() >= SCRIPT_CACHE_MAX_ENTRIES {
                    scripts.clear();
                }
                scripts.insert(source.to_owned(), (filename.map(str::to_owned), v8::Global::new(scope, script)));
            }
            script
        }
    };
    v8::tc_scope!(let tc, scope);
    match script.run(tc) {
        Some(v) => Ok(v),
        None => Err(caught(tc, st, false)),
    }
}

/// Finds the parent object of the last segment of a dotted path.
fn walk_parent<'s, 'n>(
    scope: &mut v8::PinScope<'s, '_>,
    path: &'n str,
    create: bool,
) -> Result<(v8::Local<'s, v8::Object>, &'n str)> {
    let global = scope.get_current_context().global(scope);
    let mut obj = global;
    let mut parts = path.split('.').peekable();
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            return Ok((obj, part));
        }
        let key = v8::String::new(scope, part).unwrap();
        let next = obj.get(scope, key.into()).unwrap_or_else(|| v8::undefined(scope).into());
        obj = match v8::Local::<v8::Object>::try_from(next) {
            Ok(o) => o,
            Err(_) if create && next.is_undefined() => {
                let o = v8::Object::new(scope);
                obj.set(scope, key.into(), o.into());
                o
            }
            Err(_) => {
                return Err(Error::InvalidArgument(format!("{path}: {part} is {}", type_name(next))));
            }
        };
    }
    Err(Error::InvalidArgument("empty path".into()))
}

fn type_name(v: v8::Local<v8::Value>) -> &'static str {
    if v.is_undefined() {
        "undefined"
    } else if v.is_null() {
        "null"
    } else if v.is_function() {
        "a function"
    } else if v.is_object() {
        "an object"
    } else {
        "a primitive"
    }
}

fn resolve_target<'s>(
    scope: &mut v8::PinScope<'s, '_>,
    st: &State,
    target: CallTarget,
) -> Result<(v8::Local<'s, v8::Function>, v8::Local<'s, v8::Value>)> {
    let undefined: v8::Local<v8::Value> = v8::undefined(scope).into();
    let (v, this, what) = match target {
        CallTarget::Handle(id) => {
            let v =
                st.handle_local(scope, id).ok_or_else(|| Error::InvalidArgument("the handle was released".into()))?;
            (v, undefined, String::from("the handle"))
        }
        CallTarget::Source(src) if crate::context::is_dotted_path(src) => {
            let (parent, last) = walk_parent(scope, src, false)?;
            let key = v8::String::new(scope, last).unwrap();
            let v = parent.get(scope, key.into()).unwrap_or(undefined);
            (v, parent.into(), src.to_owned())
        }
        CallTarget::Source(src) => {
            let v = eval_cached(scope, st, src, Some("<call>"))?;
            (v, undefined, src.to_owned())
        }
    };
    match v8::Local::<v8::Function>::try_from(v) {
        Ok(f) => Ok((f, this)),
        Err(_) => Err(Error::InvalidArgument(format!("{what} is {}, not a function", type_name(v)))),
    }
}

fn call_function<'s>(
    scope: &mut v8::PinScope<'s, '_>,
    st: &State,
    f: v8::Local<'s, v8::Function>,
    this: v8::Local<'s, v8::Value>,
    args: Args,
) -> Result<v8::Local<'s, v8::Value>> {
    let mut argv = smallvec::SmallVec::<[v8::Local<v8::Value>; 8]>::with_capacity(args.len());
    transfer::to_v8(scope, st, args, &mut argv)?;
    v8::tc_scope!(let tc, scope);
    match f.call(tc, this, &argv) {
        Some(v) => Ok(v),
        None => Err(caught(tc, st, false)),
    }
}

fn property_key<'s>(scope: &mut v8::PinScope<'s, '_>, st: &State, key: Value) -> Result<v8::Local<'s, v8::Value>> {
    match key {
        Value::String(_) | Value::Integer(_) | Value::Number(_) => crate::transfer::value_to_v8(scope, st, &key),
        Value::Handle(ref h) if h.kind() == HandleKind::Symbol => crate::transfer::value_to_v8(scope, st, &key),
        other => Err(Error::InvalidArgument(format!(
            "a property key must be a string, number or symbol, not {}",
            other.kind()
        ))),
    }
}

fn handle_op<'s>(
    scope: &mut v8::PinScope<'s, '_>,
    st: &State,
    id: u32,
    op: HandleOp,
    deadline: Option<Instant>,
    sink: Option<SinkRef>,
) -> Result<Out> {
    let v = st.handle_local(scope, id).ok_or_else(|| Error::InvalidArgument("the handle was released".into()))?;
    match op {
        HandleOp::Get(key) => {
            let obj = as_object(v)?;
            let k = property_key(scope, st, key)?;
            v8::tc_scope!(let tc, scope);
            match obj.get(tc, k) {
                Some(r) => out_as(tc, st, r, false, sink),
                None => Err(caught(tc, st, false)),
            }
        }
        HandleOp::Set(key, value) => {
            let obj = as_object(v)?;
            let k = property_key(scope, st, key)?;
            let val = crate::transfer::value_to_v8(scope, st, &value)?;
            v8::tc_scope!(let tc, scope);
            match obj.set(tc, k, val) {
                Some(_) => Ok(Out::Unit),
                None => Err(caught(tc, st, false)),
            }
        }
        HandleOp::Delete(key) => {
            let obj = as_object(v)?;
            let k = property_key(scope, st, key)?;
            v8::tc_scope!(let tc, scope);
            match obj.delete(tc, k) {
                Some(b) => Ok(Out::Value(Value::Bool(b))),
                None => Err(caught(tc, st, false)),
            }
        }
        HandleOp::Keys => {
            let obj = as_object(v)?;
            v8::tc_scope!(let tc, scope);
            let keys = obj.get_own_property_names(
                tc,
                v8::GetPropertyNamesArgs {
                    mode: v8::KeyCollectionMode::OwnOnly,
                    property_filter: v8::PropertyFilter::ONLY_ENUMERABLE | v8::PropertyFilter::SKIP_SYMBOLS,
                    index_filter: v8::IndexFilter::IncludeIndices,
                    key_conversion: v8::KeyConversionMode::ConvertToString,
                },
            );
            match keys {
                Some(k) => out_as(tc, st, k.into(), false, sink),
                None => Err(caught(tc, st, false)),
            }
        }
        HandleOp::PreviewEntries => {
            let obj = as_object(v)?;
            match obj.preview_entries(scope) {
                (Some(entries), key_value) => {
                    let pair = [entries.into(), v8::Boolean::new(scope, key_value).into()];
                    let out = v8::Array::new_with_elements(scope, &pair);
                    out_as(scope, st, out.into(), false, sink)
                }
                (None, _) => Err(Error::InvalidArgument(
                    "only a Map, Set, WeakMap, WeakSet or an iterator of a Map or Set has entries to preview".into(),
                )),
            }
        }
        HandleOp::Length => {
            let obj = as_object(v)?;
            let k = v8::String::new(scope, "length").unwrap();
            v8::tc_scope!(let tc, scope);
            match obj.get(tc, k.into()) {
                Some(r) => out_as(tc, st, r, false, sink),
                None => Err(caught(tc, st, false)),
            }
        }
        HandleOp::Call { this, args, as_handle } => {
            let f = v8::Local::<v8::Function>::try_from(v)
                .map_err(|_| Error::InvalidArgument("the handle is not a function".into()))?;
            let this = match this {
                Some(t) => crate::transfer::value_to_v8(scope, st, &t)?,
                None => v8::undefined(scope).into(),
            };
            let r = call_function(scope, st, f, this, args)?;
            finish(scope, st, r, as_handle, AwaitMode::No, deadline, sink)
        }
        HandleOp::CallMethod { name, args } => {
            let obj = as_object(v)?;
            let k = v8::String::new(scope, &name).unwrap();
            let m = obj.get(scope, k.into()).unwrap_or_else(|| v8::undefined(scope).into());
            let f = v8::Local::<v8::Function>::try_from(m)
                .map_err(|_| Error::InvalidArgument(format!("{name} is {}, not a function", type_name(m))))?;
            let r = call_function(scope, st, f, obj.into(), args)?;
            finish(scope, st, r, false, AwaitMode::No, deadline, sink)
        }
        HandleOp::Construct { args } => {
            let f = v8::Local::<v8::Function>::try_from(v)
                .map_err(|_| Error::InvalidArgument("the handle is not a function".into()))?;
            let mut argv = smallvec::SmallVec::<[v8::Local<v8::Value>; 8]>::with_capacity(args.len());
            transfer::to_v8(scope, st, args, &mut argv)?;
            v8::tc_scope!(let tc, scope);
            match f.new_instance(tc, &argv) {
                Some(r) => finish(tc, st, r.into(), true, AwaitMode::No, deadline, sink),
                None => Err(caught(tc, st, false)),
            }
        }
        HandleOp::Await { defer } => {
            let p = v8::Local::<v8::Promise>::try_from(v)
                .map_err(|_| Error::InvalidArgument("the handle is not a promise".into()))?;
            let mode = if defer { AwaitMode::Defer } else { AwaitMode::Block };
            finish(scope, st, p.into(), false, mode, deadline, sink)
        }
        HandleOp::Copy => out_as(scope, st, v, false, sink),
        HandleOp::ToJsString => {
            if let Ok(sym) = v8::Local::<v8::Symbol>::try_from(v) {
                let d = sym.description(scope);
                return Ok(Out::Value(Value::String(d.to_rust_string_lossy(scope))));
            }
            v8::tc_scope!(let tc, scope);
            match v.to_string(tc) {
                Some(s) => Ok(Out::Value(Value::String(s.to_rust_string_lossy(tc)))),
                None => Err(caught(tc, st, false)),
            }
        }
        HandleOp::PromiseState => {
            let p = v8::Local::<v8::Promise>::try_from(v)
                .map_err(|_| Error::InvalidArgument("the handle is not a promise".into()))?;
            scope.perform_microtask_checkpoint();
            Ok(Out::Value(Value::Integer(match p.state() {
                v8::PromiseState::Pending => 0,
                v8::PromiseState::Fulfilled => 1,
                v8::PromiseState::Rejected => 2,
            })))
        }
    }
}

fn as_object(v: v8::Local<v8::Value>) -> Result<v8::Local<v8::Object>> {
    v8::Local::<v8::Object>::try_from(v).map_err(|_| Error::InvalidArgument("the handle is not an object".into()))
}
