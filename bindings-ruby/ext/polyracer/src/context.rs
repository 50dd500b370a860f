//! `Polyracer::Context`: calls into core with the GVL released.

use std::sync::Mutex;

use magnus::typed_data::Obj;
use magnus::value::{Opaque, ReprValue};
use magnus::{Error, RHash, RString, Ruby, Symbol, TryConvert, Value};
use polyracer as pr;

use crate::causes::host_error_from;
use crate::classes::{arg_error, JsRef, RbContext, RbScript, RbSnapshot};
use crate::error::{built, OrRaise};
use crate::from_ruby::{rstring_to_string, RbSource};
use crate::gvl::{ruby_thread, with_gvl, without_gvl};
use crate::options::{eval_opts, memory_limit, seconds};
use crate::script::owner_ctx;
use crate::to_ruby::{value_to_rb, RbSink};

/// Runs a Ruby callable for JS, on the waiting thread, with the GVL. Its
/// arguments are built straight from the JS values and its result read
/// straight into JS (`expose_raw`: no `Value` either way, so the same Ruby
/// object twice in the result is one JS object twice).
pub(crate) fn call_ruby(
    ctx: &pr::Context,
    callable: Opaque<Value>,
    owner: Opaque<Value>,
    call: &mut pr::HostCall,
) -> Result<(), pr::HostError> {
    ruby_thread()?;
    with_gvl(|ruby| {
        let owner = ruby.get_inner(owner);
        let to_host = |e: Error| host_error_from(ruby, ctx, e);
        let mut argv = Vec::with_capacity(call.len());
        for i in 0..call.len() {
            let mut sink = RbSink::new(owner);
            if let Err(e) = call.arg_into(i, &mut sink) {
                return Err(sink.take_error().map(to_host).unwrap_or(e));
            }
            argv.push(sink.finish(ruby).map_err(to_host)?);
        }
        let r: Value = ruby.get_inner(callable).funcall("call", argv.as_slice()).map_err(to_host)?;
        let mut source = RbSource::new();
        let ret = source.arg(ruby, r).map_err(to_host)?;
        call.set_return(&mut source, &ret).map_err(|e| source.take_error().map(to_host).unwrap_or(e))
    })
}

impl RbContext {
    pub(crate) fn rb_new(
        ruby: &Ruby,
        timeout: Option<Value>,
        memory_limit: Option<Value>,
        snapshot: Option<&RbSnapshot>,
        gc_heap_limit: Option<i64>,
        keep_lone_surrogates: bool,
    ) -> Result<Obj<RbContext>, Error> {
        let gc_heap_limit = gc_heap_limit
            .map(|b| pr::limits::gc_heap_limit(i128::from(b)))
            .transpose()
            .map_err(|e| crate::error::to_rb_err(ruby, None, e))?;
        let options = pr::ContextOptions {
            timeout: seconds(ruby, timeout)?,
            memory_limit: self::memory_limit(ruby, memory_limit)?,
            snapshot: snapshot.map(|s| s.get()),
            gc_heap_limit,
        };
        let inner = without_gvl(ruby, || pr::Context::new(options)).or_raise(ruby, None)?;
        inner.set_task_scheduler(Some(crate::tasks::scheduler(&inner)));
        Ok(ruby.obj_wrap(RbContext {
            inner,
            keep: Mutex::new(Vec::new()),
            resolver: Mutex::new(None),
            keep_lone_surrogates,
        }))
    }

    pub(crate) fn rb_eval(
        ruby: &Ruby,
        rb_self: Obj<Self>,
        code: RString,
        filename: Option<String>,
        timeout: Option<Value>,
        await_promise: bool,
        share_buffers: bool,
    ) -> Result<Value, Error> {
        let opts = eval_opts(ruby, filename, timeout, await_promise)?;
        let code = rstring_to_string(code)?;
        let me = &*rb_self;
        let mut sink = RbSink::new(rb_self.as_value()).sharing_bytes(share_buffers);
        let r = without_gvl(ruby, || me.inner.eval_into(&code, opts, &mut sink));
        built(ruby, rb_self.as_value(), r, sink, None)
    }

    pub(crate) fn call_impl(
        ruby: &Ruby,
        rb_self: Obj<Self>,
        args: &[Value],
        await_promise: bool,
    ) -> Result<Value, Error> {
        let Some((target, rest)) = args.split_first() else {
            return Err(arg_error(ruby, "call needs a function: a JSFunction, a global path or a function expression"));
        };
        let mut source = RbSource::new();
        let argv = source.args(ruby, rest)?;
        let opts = pr::EvalOptions { await_promise, ..Default::default() };
        let me = &*rb_self;
        let mut sink = RbSink::new(rb_self.as_value());
        let r = if let Ok(f) = <&JsRef>::try_convert(*target) {
            let h = f.h.clone();
            without_gvl(ruby, || me.inner.call_into(&h, &mut source, &argv, opts, &mut sink))
        } else if let Some(s) = RString::from_value(*target) {
            let s = rstring_to_string(s)?;
            without_gvl(ruby, || me.inner.call_into(s.as_str(), &mut source, &argv, opts, &mut sink))
        } else if let Some(sym) = Symbol::from_value(*target) {
            let s = sym.name()?.into_owned();
            without_gvl(ruby, || me.inner.call_into(s.as_str(), &mut source, &argv, opts, &mut sink))
        } else {
            return Err(Error::new(
                ruby.exception_type_error(),
                "call needs a JSFunction, a global path or a function expression",
            ));
        };
        built(ruby, rb_self.as_value(), r, sink, Some(&mut source))
    }

    pub(crate) fn rb_call(ruby: &Ruby, rb_self: Obj<Self>, args: &[Value]) -> Result<Value, Error> {
        Self::call_impl(ruby, rb_self, args, false)
    }

    pub(crate) fn rb_call_await(ruby: &Ruby, rb_self: Obj<Self>, args: &[Value]) -> Result<Value, Error> {
        Self::call_impl(ruby, rb_self, args, true)
    }

    pub(crate) fn rb_set_global(ruby: &Ruby, rb_self: Obj<Self>, name: String, value: Value) -> Result<(), Error> {
        let mut source = RbSource::new();
        let v = source.arg(ruby, value)?;
        let me = &*rb_self;
        let r = without_gvl(ruby, || me.inner.set_global_from(&name, &mut source, &v));
        if matches!(r, Ok(Err(_))) {
            if let Some(e) = source.take_error() {
                return Err(e);
            }
        }
        r.or_raise(ruby, None)
    }

    pub(crate) fn rb_attach(ruby: &Ruby, rb_self: Obj<Self>, name: String, callable: Value) -> Result<(), Error> {
        if !callable.respond_to("call", false)? {
            return Err(Error::new(
                ruby.exception_type_error(),
                "attach needs a callable (a Proc, Method or object with #call)",
            ));
        }
        let me = &*rb_self;
        me.keep.lock().unwrap_or_else(|e| e.into_inner()).push(Opaque::from(callable));
        let (callable, owner) = (Opaque::from(callable), Opaque::from(rb_self.as_value()));
        let r = me.inner.expose_raw(&name, move |ctx, call| call_ruby(ctx, callable, owner, call));
        Ok(r).or_raise(ruby, None)
    }

    pub(crate) fn rb_attach_async(ruby: &Ruby, rb_self: Obj<Self>, name: String, callable: Value) -> Result<(), Error> {
        if !callable.respond_to("call", false)? {
            return Err(Error::new(
                ruby.exception_type_error(),
                "attach_async needs a callable (a Proc, Method or object with #call)",
            ));
        }
        let me = &*rb_self;
        me.keep.lock().unwrap_or_else(|e| e.into_inner()).push(Opaque::from(callable));
        let f = crate::completer::async_host_fn(Opaque::from(callable), Opaque::from(rb_self.as_value()));
        Ok(me.inner.expose_async(&name, f)).or_raise(ruby, None)
    }

    pub(crate) fn rb_terminate(&self) {
        self.inner.terminate();
    }

    pub(crate) fn rb_heap_stats(ruby: &Ruby, rb_self: Obj<Self>) -> Result<RHash, Error> {
        let me = &*rb_self;
        let s = without_gvl(ruby, || me.inner.heap_stats()).or_raise(ruby, None)?;
        let h = ruby.hash_new();
        for (k, v) in s.entries() {
            h.aset(ruby.to_symbol(k), v)?;
        }
        Ok(h)
    }

    pub(crate) fn rb_low_memory_notification(ruby: &Ruby, rb_self: Obj<Self>) -> Result<(), Error> {
        let me = &*rb_self;
        without_gvl(ruby, || me.inner.low_memory_notification()).or_raise(ruby, None)
    }

    pub(crate) fn rb_run_pending_tasks(ruby: &Ruby, rb_self: Obj<Self>) -> Result<bool, Error> {
        let me = &*rb_self;
        without_gvl(ruby, || me.inner.run_pending_tasks()).or_raise(ruby, Some(rb_self.as_value()))
    }

    pub(crate) fn rb_perform_microtask_checkpoint(ruby: &Ruby, rb_self: Obj<Self>) -> Result<(), Error> {
        let me = &*rb_self;
        without_gvl(ruby, || me.inner.perform_microtask_checkpoint()).or_raise(ruby, Some(rb_self.as_value()))
    }

    pub(crate) fn rb_write_heap_snapshot(ruby: &Ruby, rb_self: Obj<Self>, path: String) -> Result<(), Error> {
        let me = &*rb_self;
        without_gvl(ruby, || me.inner.write_heap_snapshot(&path)).or_raise(ruby, None)
    }

    pub(crate) fn rb_dispose(ruby: &Ruby, rb_self: Obj<Self>) -> Result<(), Error> {
        let me = &*rb_self;
        without_gvl(ruby, || me.inner.dispose())
    }

    pub(crate) fn rb_is_disposed(&self) -> bool {
        self.inner.is_disposed()
    }

    pub(crate) fn rb_compile(
        ruby: &Ruby,
        rb_self: Obj<Self>,
        source: RString,
        filename: Option<String>,
        cached_data: Option<RString>,
        produce_cache: bool,
    ) -> Result<Obj<RbScript>, Error> {
        let source = rstring_to_string(source)?;
        // SAFETY: copied before any Ruby code runs.
        let cache = cached_data.map(|c| unsafe { c.as_slice() }.to_vec());
        let me = &*rb_self;
        let s = without_gvl(ruby, || {
            me.inner.compile(
                &source,
                pr::CompileOptions { filename: filename.as_deref(), cached_data: cache.as_deref(), produce_cache },
            )
        })
        .or_raise(ruby, Some(rb_self.as_value()))?;
        Ok(ruby.obj_wrap(RbScript { s, owner: Opaque::from(rb_self.as_value()) }))
    }

    pub(crate) fn rb_eval_module(
        ruby: &Ruby,
        rb_self: Obj<Self>,
        source: RString,
        filename: String,
        resolver: Value,
        timeout: Option<Value>,
    ) -> Result<Value, Error> {
        let source = rstring_to_string(source)?;
        let timeout = seconds(ruby, timeout)?;
        let me = &*rb_self;
        *me.resolver.lock().unwrap_or_else(|e| e.into_inner()) = Some(Opaque::from(resolver));
        // The closure lives in the core context: it must not own a clone of
        // it (a cycle that would keep the context alive), so it reaches the
        // context through the Ruby object, which is alive while JS runs.
        let (resolver, owner) = (Opaque::from(resolver), Opaque::from(rb_self.as_value()));
        let resolve = move |spec: &str, referrer: &str| -> Result<String, pr::HostError> {
            ruby_thread()?;
            with_gvl(|ruby| {
                let run = || -> Result<String, Error> {
                    if ruby.get_inner(resolver).is_nil() {
                        return Err(Error::new(
                            ruby.exception_type_error(),
                            format!("no resolver given to import {spec:?}"),
                        ));
                    }
                    let r: Value =
                        ruby.get_inner(resolver).funcall("call", (ruby.str_new(spec), ruby.str_new(referrer)))?;
                    let s = RString::from_value(r).ok_or_else(|| {
                        Error::new(
                            ruby.exception_type_error(),
                            format!("the resolver must return a String for {spec:?}"),
                        )
                    })?;
                    rstring_to_string(s)
                };
                run().map_err(|e| match owner_ctx(ruby, owner) {
                    Ok(ctx) => host_error_from(ruby, &ctx.inner, e),
                    Err(_) => pr::HostError::new("the context is gone"),
                })
            })
        };
        let opts = pr::ModuleOptions { timeout, ..Default::default() };
        let m = without_gvl(ruby, || me.inner.eval_module_with(&source, &filename, resolve, opts))
            .or_raise(ruby, Some(rb_self.as_value()))?;
        value_to_rb(ruby, rb_self.as_value(), pr::Value::Handle(m.handle))
    }
}
