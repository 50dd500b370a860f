//! `setTimeout`, `clearTimeout`, `queueMicrotask` and the built-in globals.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use super::host_calls::throw_error;
use super::{state, State};
use crate::error::Result;

pub(super) struct TimerTask {
    func: v8::Global<v8::Function>,
    args: Vec<v8::Global<v8::Value>>,
}

#[derive(Default)]
pub(super) struct Timers {
    pub(super) next_id: u32,
    pub(super) queue: BTreeMap<(Instant, u32), TimerTask>,
    pub(super) due_of: HashMap<u32, Instant>,
}

pub(super) fn run_due_timers(scope: &mut v8::PinScope, st: &State) -> Result<bool> {
    if st.timers.borrow().queue.is_empty() {
        return Ok(false);
    }
    let mut ran = false;
    loop {
        let task = {
            let mut timers = st.timers.borrow_mut();
            let now = Instant::now();
            let key = match timers.queue.keys().next() {
                Some(k) if k.0 <= now => *k,
                _ => break,
            };
            timers.due_of.remove(&key.1);
            timers.queue.remove(&key).unwrap()
        };
        ran = true;
        let f = v8::Local::new(scope, &task.func);
        let args: Vec<_> = task.args.iter().map(|a| v8::Local::new(scope, a)).collect();
        let undefined = v8::undefined(scope).into();
        {
            v8::tc_scope!(let tc, scope);
            // An exception in a timer callback has no caller to go to; it is
            // dropped, as an unhandled error in an event-loop task.
            if f.call(tc, undefined, &args).is_none() && (tc.has_terminated() || st.interrupted()) {
                return Err(st.termination_error());
            }
        }
        scope.perform_microtask_checkpoint();
        if st.interrupted() {
            return Err(st.termination_error());
        }
    }
    Ok(ran)
}

pub(super) fn install_builtins(scope: &mut v8::PinScope) {
    // V8's own `console` does nothing without an inspector delegate; the
    // sandbox has no globals beyond the language and the three below.
    let global = scope.get_current_context().global(scope);
    let console = v8::String::new(scope, "console").unwrap();
    global.delete(scope, console.into());
    install_fn(scope, "setTimeout", set_timeout);
    install_fn(scope, "clearTimeout", clear_timeout);
    install_fn(scope, "queueMicrotask", queue_microtask);
}

fn install_fn(scope: &mut v8::PinScope, name: &str, cb: impl v8::MapFnTo<v8::FunctionCallback>) {
    let global = scope.get_current_context().global(scope);
    let f = v8::Function::new(scope, cb).unwrap();
    let key = v8::String::new(scope, name).unwrap();
    f.set_name(key);
    global.set(scope, key.into(), f.into());
}

fn set_timeout(scope: &mut v8::PinScope, args: v8::FunctionCallbackArguments, mut rv: v8::ReturnValue<v8::Value>) {
    let Ok(f) = v8::Local::<v8::Function>::try_from(args.get(0)) else {
        throw_error(scope, "TypeError", "setTimeout: the callback must be a function");
        return;
    };
    let ms = args.get(1).number_value(scope).unwrap_or(0.0);
    let ms = if ms.is_finite() && ms > 0.0 { ms.min(2_147_483_647.0) } else { 0.0 };
    let extra: Vec<_> = (2..args.length()).map(|i| v8::Global::new(scope, args.get(i))).collect();
    let st = state(scope);
    let mut timers = st.timers.borrow_mut();
    timers.next_id = timers.next_id.wrapping_add(1).max(1);
    let id = timers.next_id;
    let due = Instant::now() + Duration::from_micros((ms * 1000.0) as u64);
    timers.queue.insert((due, id), TimerTask { func: v8::Global::new(scope, f), args: extra });
    timers.due_of.insert(id, due);
    rv.set(v8::Integer::new_from_unsigned(scope, id).into());
}

fn clear_timeout(scope: &mut v8::PinScope, args: v8::FunctionCallbackArguments, _rv: v8::ReturnValue<v8::Value>) {
    let Some(id) = args.get(0).uint32_value(scope) else {
        return;
    };
    let st = state(scope);
    let mut timers = st.timers.borrow_mut();
    if let Some(due) = timers.due_of.remove(&id) {
        timers.queue.remove(&(due, id));
    }
}

fn queue_microtask(scope: &mut v8::PinScope, args: v8::FunctionCallbackArguments, _rv: v8::ReturnValue<v8::Value>) {
    match v8::Local::<v8::Function>::try_from(args.get(0)) {
        Ok(f) => scope.enqueue_microtask(f),
        Err(_) => throw_error(scope, "TypeError", "queueMicrotask: the callback must be a function"),
    }
}
