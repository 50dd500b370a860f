//! `polyracer/polyracer.so`: the native half of the `polyracer` gem. Thin by
//! design: value conversion, error mapping and GVL handling; everything
//! else lives in the `polyracer` core crate. `lib/polyracer.rb` adds the
//! keyword-argument API on top of the `__`-prefixed methods defined here.
//!
//! GVL protocol: every request to a context runs with the GVL released
//! (`rb_thread_call_without_gvl2`, so other Ruby threads proceed), with an
//! unblocking function that terminates the running JS; `Thread#raise`,
//! `Timeout.timeout` and signals are then delivered by `rb_thread_check_ints`
//! under `protect` once no Rust frame is left to skip. JS runs on the calling
//! thread, so host callbacks arrive there too and re-take the GVL with
//! `rb_thread_call_with_gvl`; Ruby exceptions raised there are caught by
//! magnus and carried as the `HostError` payload.

#[macro_use]
mod classes;
mod causes;
mod completer;
mod context;
mod error;
mod from_ruby;
mod gvl;
mod handles;
mod memory;
mod options;
mod script;
mod tasks;
mod to_ruby;

use magnus::{function, method, prelude::*, Error, Ruby};
use polyracer as pr;

use crate::classes::{module, JsRef, RbContext, RbScript, RbSnapshot, CAUSES, C_SET, UNDEFINED};
use crate::error::OrRaise;
use crate::gvl::interrupt_requested;

fn rb_configure(ruby: &Ruby, flags: Vec<String>, single_threaded: bool) -> Result<(), Error> {
    Ok(pr::configure(pr::EngineOptions { flags, single_threaded })).or_raise(ruby, None)
}

fn rb_cached_data_version_tag() -> u32 {
    pr::cached_data_version_tag()
}

fn rb_resolve_specifier(specifier: String, referrer: String) -> String {
    pr::resolve_specifier(&specifier, &referrer)
}

fn rb_initialized() -> bool {
    pr::is_initialized()
}

#[magnus::init(name = "polyracer")]
fn init(ruby: &Ruby) -> Result<(), Error> {
    let m = module(ruby);
    pr::set_wait_hook(Some(interrupt_requested));
    // Root the lazily created registry and classes now, on the main thread.
    let _ = ruby.get_inner(&CAUSES);
    let _ = ruby.get_inner(&C_SET);
    let _ = ruby.get_inner(&UNDEFINED);
    m.const_set("V8_VERSION", ruby.str_new(pr::v8_version()))?;
    m.define_singleton_method("__configure", function!(rb_configure, 2))?;
    m.define_singleton_method("__cached_data_version_tag", function!(rb_cached_data_version_tag, 0))?;
    m.define_singleton_method("engine_started?", function!(rb_initialized, 0))?;
    m.define_singleton_method("resolve_specifier", function!(rb_resolve_specifier, 2))?;
    m.define_singleton_method("__drain_tasks", function!(tasks::rb_drain_tasks, 0))?;
    m.define_singleton_method("__expect_drainer", function!(tasks::rb_expect_drainer, 0))?;

    let c = m.define_class("Context", ruby.class_object())?;
    c.undef_default_alloc_func();
    memory::define(ruby)?;
    c.define_singleton_method("__new", function!(RbContext::rb_new, 5))?;
    c.define_method("__eval", method!(RbContext::rb_eval, 5))?;
    c.define_method("call", method!(RbContext::rb_call, -1))?;
    c.define_method("call_await", method!(RbContext::rb_call_await, -1))?;
    c.define_method("__set_global", method!(RbContext::rb_set_global, 2))?;
    c.define_method("__attach", method!(RbContext::rb_attach, 2))?;
    c.define_method("__attach_async", method!(RbContext::rb_attach_async, 2))?;
    let comp = m.define_class("Completer", ruby.class_object())?;
    comp.undef_default_alloc_func();
    comp.define_method("resolve", method!(completer::RbCompleter::rb_resolve, 1))?;
    comp.define_method("reject", method!(completer::RbCompleter::rb_reject, 1))?;
    comp.define_method("settled?", method!(completer::RbCompleter::rb_is_settled, 0))?;
    c.define_method("terminate", method!(RbContext::rb_terminate, 0))?;
    c.define_method("heap_stats", method!(RbContext::rb_heap_stats, 0))?;
    c.define_method("low_memory_notification", method!(RbContext::rb_low_memory_notification, 0))?;
    c.define_method("run_pending_tasks", method!(RbContext::rb_run_pending_tasks, 0))?;
    c.define_method("perform_microtask_checkpoint", method!(RbContext::rb_perform_microtask_checkpoint, 0))?;
    c.define_method("__write_heap_snapshot", method!(RbContext::rb_write_heap_snapshot, 1))?;
    c.define_method("dispose", method!(RbContext::rb_dispose, 0))?;
    c.define_method("disposed?", method!(RbContext::rb_is_disposed, 0))?;
    c.define_method("__compile", method!(RbContext::rb_compile, 4))?;
    c.define_method("__eval_module", method!(RbContext::rb_eval_module, 4))?;

    let s = m.define_class("Script", ruby.class_object())?;
    s.undef_default_alloc_func();
    s.define_method("__run", method!(RbScript::rb_run, 1))?;
    s.define_method("cached_data", method!(RbScript::rb_cached_data, 0))?;
    s.define_method("cache_rejected?", method!(RbScript::rb_cache_rejected, 0))?;
    s.define_method("dispose", method!(RbScript::rb_dispose, 0))?;

    let sn = m.define_class("Snapshot", ruby.class_object())?;
    sn.undef_default_alloc_func();
    sn.define_singleton_method("__new", function!(RbSnapshot::rb_new, 1))?;
    sn.define_singleton_method("load", function!(RbSnapshot::rb_load, 1))?;
    sn.define_method("warmup!", method!(RbSnapshot::rb_warmup, 1))?;
    sn.define_method("dump", method!(RbSnapshot::rb_dump, 0))?;

    let o = m.define_class("JSObject", ruby.class_object())?;
    o.undef_default_alloc_func();
    let f = m.define_class("JSFunction", o)?;
    let p = m.define_class("JSPromise", o)?;
    o.define_method("[]", method!(JsRef::rb_get, 1))?;
    o.define_method("[]=", method!(JsRef::rb_set, 2))?;
    o.define_method("delete", method!(JsRef::rb_delete, 1))?;
    o.define_method("keys", method!(JsRef::rb_keys, 0))?;
    o.define_method("preview_entries", method!(JsRef::rb_preview_entries, 0))?;
    o.define_method("length", method!(JsRef::rb_length, 0))?;
    o.define_method("call_method", method!(JsRef::rb_call_method, -1))?;
    o.define_method("to_ruby", method!(JsRef::rb_to_ruby, 0))?;
    o.define_method("to_js_string", method!(JsRef::rb_to_js_string, 0))?;
    o.define_method("kind", method!(JsRef::rb_kind, 0))?;
    o.define_method("context", method!(JsRef::rb_context, 0))?;
    o.define_method("same?", method!(JsRef::rb_same, 1))?;
    f.define_method("call", method!(JsRef::rb_call, -1))?;
    f.define_method("__call_timeout", method!(JsRef::rb_call_timeout, 2))?;
    f.define_method("new", method!(JsRef::rb_construct, -1))?;
    p.define_method("__await", method!(JsRef::rb_await, 1))?;
    p.define_method("state", method!(JsRef::rb_state, 0))?;
    Ok(())
}
