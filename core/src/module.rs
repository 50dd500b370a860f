//! ES modules (brief §6): static and dynamic imports through a host
//! resolver, top-level await, `import.meta.url`, module code cache.
//!
//! Each module has a name: the root module's is its filename; an import's
//! is its specifier resolved against the importing module's name
//! ([`resolve_specifier`]). The name is the module's identity (importing it
//! twice gives one instance), its `import.meta.url` and the file name in
//! its stack traces.

use std::sync::Arc;

use crate::context::{Context, ModuleResolver};
use crate::error::{Error, Result};
use crate::framing::{self, Kind};
use crate::protocol::{Out, Request};
use crate::runtime::{self, caught, new_source, origin, State};
use crate::value::{HostError, Value};

/// Options for [`Context::eval_module_with`].
#[derive(Clone, Copy, Debug, Default)]
pub struct ModuleOptions<'a> {
    /// Code cache for the root module (see [`crate::CompileOptions`]).
    pub cached_data: Option<&'a [u8]>,
    pub produce_cache: bool,
    /// Overrides the context's default timeout (covers top-level await).
    pub timeout: Option<std::time::Duration>,
}

/// The result of evaluating a module.
#[derive(Debug)]
pub struct ModuleResult {
    /// A copy of the namespace object (exports; functions are handles).
    pub namespace: Value,
    /// The namespace object itself.
    pub handle: crate::JsHandle,
    pub cache_rejected: bool,
    pub cached_data: Option<Vec<u8>>,
}

/// Resolves `specifier` against the name of the module importing it:
/// `./x.js` and `../x.js` join with the referrer's directory (`.` and `..`
/// segments are folded); `/x.js` replaces the referrer's path after any
/// `scheme://host`; anything else (a bare specifier) is kept as is.
pub fn resolve_specifier(specifier: &str, referrer: &str) -> String {
    let relative = specifier.starts_with("./") || specifier.starts_with("../");
    let absolute = specifier.starts_with('/');
    if !relative && !absolute {
        return specifier.to_owned();
    }
    // Split off "scheme://host" so it is never folded away.
    let (prefix, path) = match referrer.find("://") {
        Some(i) => {
            let rest = &referrer[i + 3..];
            let host_end = rest.find('/').map_or(referrer.len(), |j| i + 3 + j);
            referrer.split_at(host_end)
        }
        None => ("", referrer),
    };
    let joined = if absolute {
        specifier.to_owned()
    } else {
        let dir = path.rfind('/').map_or("", |i| &path[..=i]);
        format!("{dir}{specifier}")
    };
    let leading_slash = joined.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for seg in joined.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                if matches!(parts.last(), Some(p) if *p != "..") {
                    parts.pop();
                } else if !leading_slash {
                    parts.push("..");
                }
            }
            s => parts.push(s),
        }
    }
    let body = parts.join("/");
    format!("{prefix}{}{body}", if leading_slash { "/" } else { "" })
}

impl Context {
    /// Evaluates `source` as an ES module named `filename`. Imports (static
    /// and dynamic `import()`, also later ones) are loaded through
    /// `resolver(specifier, referrer)`, which returns the imported module's
    /// source; it runs on the calling thread. The resolver stays installed
    /// for later dynamic imports until another `eval_module` replaces it.
    /// Top-level await is awaited.
    pub fn eval_module<F>(&self, source: &str, filename: &str, resolver: F) -> Result<ModuleResult>
    where
        F: Fn(&str, &str) -> Result<String, HostError> + Send + Sync + 'static,
    {
        self.eval_module_with(source, filename, resolver, ModuleOptions::default())
    }

    pub fn eval_module_with<F>(
        &self,
        source: &str,
        filename: &str,
        resolver: F,
        options: ModuleOptions<'_>,
    ) -> Result<ModuleResult>
    where
        F: Fn(&str, &str) -> Result<String, HostError> + Send + Sync + 'static,
    {
        self.shared_ref().set_module_resolver(Some(Arc::new(resolver) as ModuleResolver));
        let out = self.shared_ref().request(
            Request::EvalModule {
                source,
                filename,
                cached_data: options.cached_data,
                produce_cache: options.produce_cache,
            },
            options.timeout,
        )?;
        match out {
            Out::Module(m) => Ok(*m),
            other => Err(Error::Conversion(format!("unexpected reply {other:?}"))),
        }
    }
}

/// Owner thread: compiles a module and registers it under `name`.
fn compile_module<'s>(
    scope: &mut v8::PinScope<'s, '_>,
    st: &State,
    name: &str,
    source: &str,
    cached: Option<&[u8]>,
) -> Result<(v8::Local<'s, v8::Module>, bool)> {
    v8::tc_scope!(let tc, scope);
    match compile_module_raw(tc, st, name, source, cached) {
        Ok(Some(r)) => Ok(r),
        Ok(None) => Err(caught(tc, st, true)),
        Err(e) => Err(e),
    }
}

/// Like `compile_module`, leaving a compile exception pending in `scope`
/// (`Ok(None)`) so it propagates to whatever JS operation is running.
fn compile_module_raw<'s>(
    scope: &mut v8::PinScope<'s, '_>,
    st: &State,
    name: &str,
    source: &str,
    cached: Option<&[u8]>,
) -> Result<Option<(v8::Local<'s, v8::Module>, bool)>> {
    let code = new_source(scope, source)?;
    let origin = origin(scope, name, true);
    let (mut src, opts, refused) = crate::script::cached_source(code, &origin, source, cached);
    let Some(module) =
        v8::script_compiler::compile_module2(scope, &mut src, opts, v8::script_compiler::NoCacheReason::NoReason)
    else {
        return Ok(None);
    };
    let rejected = refused || src.get_cached_data().is_some_and(|c| c.rejected());
    st.register_module(scope, name, module);
    Ok(Some((module, rejected)))
}

/// Owner thread: `eval_module`.
pub(crate) fn eval_module(
    scope: &mut v8::PinScope,
    st: &State,
    source: &str,
    filename: &str,
    cached_data: Option<&[u8]>,
    produce_cache: bool,
    deadline: Option<std::time::Instant>,
) -> Result<Out> {
    if produce_cache && st.in_callback() {
        return Err(Error::InvalidArgument("cannot produce a code cache inside a host callback".into()));
    }
    let (module, rejected) = compile_module(scope, st, filename, source, cached_data)?;
    let produced = if produce_cache && (cached_data.is_none() || rejected) {
        module
            .get_unbound_module_script(scope)
            .create_code_cache()
            .map(|c| framing::wrap(Kind::CodeCache, framing::subject(source), &c))
    } else {
        None
    };
    let ns = instantiate_and_evaluate(scope, st, module, deadline)?;
    let handle = st.new_handle(scope, ns, crate::HandleKind::Object);
    let namespace = crate::transfer::to_value(scope, st, ns, false)?;
    Ok(Out::Module(Box::new(ModuleResult { namespace, handle, cache_rejected: rejected, cached_data: produced })))
}

fn instantiate_and_evaluate<'s>(
    scope: &mut v8::PinScope<'s, '_>,
    st: &State,
    module: v8::Local<'s, v8::Module>,
    deadline: Option<std::time::Instant>,
) -> Result<v8::Local<'s, v8::Value>> {
    {
        v8::tc_scope!(let tc, scope);
        if module.instantiate_module(tc, resolve_callback).is_none() {
            return Err(caught(tc, st, true));
        }
    }
    let result = {
        v8::tc_scope!(let tc, scope);
        match module.evaluate(tc) {
            Some(r) => r,
            None => return Err(caught(tc, st, false)),
        }
    };
    if let Ok(p) = v8::Local::<v8::Promise>::try_from(result) {
        runtime::await_promise_local(scope, st, p, deadline)?;
    }
    if module.get_status() == v8::ModuleStatus::Errored {
        let exc = module.get_exception();
        let msg = v8::Exception::create_message(scope, exc);
        return Err(Error::Js(Box::new(runtime::exception(scope, Some(st), exc, Some(msg)))));
    }
    Ok(module.get_module_namespace())
}

/// Loads the module `name` (asking the host for its source) unless it is
/// already registered. Throws into JS on failure and returns `None`.
fn load<'s>(
    scope: &mut v8::PinScope<'s, '_>,
    st: &State,
    specifier: &str,
    referrer: &str,
) -> Option<v8::Local<'s, v8::Module>> {
    let name = resolve_specifier(specifier, referrer);
    if let Some(m) = st.module_by_name(scope, &name) {
        return Some(m);
    }
    let source = match runtime::call_host(
        st,
        crate::context::RESOLVER_FN,
        vec![Value::from(specifier), Value::from(referrer)],
    ) {
        Ok(Value::String(s)) => s,
        Ok(other) => {
            runtime::throw_error(
                scope,
                "TypeError",
                &format!("the module resolver returned {} for {specifier:?}; it must return source text", other.kind()),
            );
            return None;
        }
        Err(e) => {
            let msg = format!("cannot resolve {specifier:?} from {referrer:?}: {}", e.message);
            runtime::throw_host_error(scope, st, HostError { message: msg, ..e });
            return None;
        }
    };
    // A SyntaxError stays pending, so instantiation fails with the imported
    // module's own file name and position.
    match compile_module_raw(scope, st, &name, &source, None) {
        Ok(Some((m, _))) => Some(m),
        Ok(None) => None,
        Err(e) => {
            runtime::throw_error(scope, "Error", &e.to_string());
            None
        }
    }
}

fn resolve_callback<'s>(
    context: v8::Local<'s, v8::Context>,
    specifier: v8::Local<'s, v8::String>,
    _attributes: v8::Local<'s, v8::FixedArray>,
    referrer: v8::Local<'s, v8::Module>,
) -> Option<v8::Local<'s, v8::Module>> {
    v8::callback_scope!(unsafe scope, context);
    let st = runtime::state(scope);
    let spec = specifier.to_rust_string_lossy(scope);
    let referrer_name = st.module_name(scope, referrer).unwrap_or_default();
    load(scope, &st, &spec, &referrer_name)
}

/// `import()` from scripts and modules.
pub(crate) fn dynamic_import<'s>(
    scope: &mut v8::PinScope<'s, '_>,
    _host_defined_options: v8::Local<'s, v8::Data>,
    resource_name: v8::Local<'s, v8::Value>,
    specifier: v8::Local<'s, v8::String>,
    _attributes: v8::Local<'s, v8::FixedArray>,
) -> Option<v8::Local<'s, v8::Promise>> {
    let resolver = v8::PromiseResolver::new(scope)?;
    let promise = resolver.get_promise(scope);
    let referrer: v8::Local<v8::Value> =
        if resource_name.is_string() { resource_name } else { v8::String::empty(scope).into() };
    import_into(scope, resolver, specifier.into(), referrer)?;
    Some(promise)
}

/// Loads, links and evaluates `specifier` and settles `resolver` with its
/// namespace (or the error). `None` when execution is being terminated.
fn import_into<'s>(
    scope: &mut v8::PinScope<'s, '_>,
    resolver: v8::Local<'s, v8::PromiseResolver>,
    specifier: v8::Local<'s, v8::Value>,
    referrer: v8::Local<'s, v8::Value>,
) -> Option<()> {
    let st = runtime::state(scope);
    let spec = specifier.to_rust_string_lossy(scope);
    let referrer_name = referrer.to_rust_string_lossy(scope);
    let outcome: Result<v8::Local<v8::Value>, v8::Local<v8::Value>> = {
        v8::tc_scope!(let tc, scope);
        match load(tc, &st, &spec, &referrer_name) {
            None => Err(tc.exception().unwrap_or_else(|| v8::undefined(tc).into())),
            Some(m) => {
                if m.get_status() == v8::ModuleStatus::Uninstantiated
                    && m.instantiate_module(tc, resolve_callback).is_none()
                {
                    Err(tc.exception().unwrap_or_else(|| v8::undefined(tc).into()))
                } else if m.get_status() == v8::ModuleStatus::Errored {
                    Err(m.get_exception())
                } else if m.get_status() == v8::ModuleStatus::Evaluating {
                    // The module imports itself (or a module on the cycle
                    // being evaluated) while it runs. V8 forbids evaluating
                    // it now (a CHECK that aborts the process); the spec
                    // continues a dynamic import in a later job, by which
                    // time the evaluation has finished. So retry from a
                    // microtask.
                    let data = v8::Array::new_with_elements(tc, &[resolver.into(), specifier, referrer]);
                    let retry = v8::Function::builder(retry_import).data(data.into()).build(tc)?;
                    tc.enqueue_microtask(retry);
                    return Some(());
                } else {
                    match m.evaluate(tc) {
                        None => Err(tc.exception().unwrap_or_else(|| v8::undefined(tc).into())),
                        Some(done) => {
                            // Resolve with the namespace once evaluation
                            // (which may await at top level) finishes.
                            let ns = m.get_module_namespace();
                            let done: v8::Local<v8::Promise> = done.try_into().ok()?;
                            let then = v8::Function::builder(
                                |_: &mut v8::PinScope,
                                 args: v8::FunctionCallbackArguments,
                                 mut rv: v8::ReturnValue<v8::Value>| {
                                    rv.set(args.data());
                                },
                            )
                            .data(ns)
                            .build(tc)?;
                            Ok(done.then(tc, then)?.into())
                        }
                    }
                }
            }
        }
    };
    if st.interrupted() {
        return None;
    }
    match outcome {
        Ok(v) => resolver.resolve(scope, v)?,
        Err(e) => resolver.reject(scope, e)?,
    };
    Some(())
}

/// The microtask `import_into` queues for a module that was still
/// evaluating: `[resolver, specifier, referrer]` in its data.
fn retry_import(scope: &mut v8::PinScope, args: v8::FunctionCallbackArguments, _rv: v8::ReturnValue<v8::Value>) {
    let Ok(data) = v8::Local::<v8::Array>::try_from(args.data()) else { return };
    let (Some(resolver), Some(specifier), Some(referrer)) =
        (data.get_index(scope, 0), data.get_index(scope, 1), data.get_index(scope, 2))
    else {
        return;
    };
    if !resolver.is_promise() {
        return;
    }
    // SAFETY: element 0 is the resolver `import_into` stored; in V8 a
    // PromiseResolver is its promise object, which the check above confirms.
    let resolver = unsafe { v8::Local::<v8::PromiseResolver>::cast_unchecked(resolver) };
    let _ = import_into(scope, resolver, specifier, referrer);
}

/// Sets `import.meta.url` to the module's name.
pub(crate) extern "C" fn import_meta(
    context: v8::Local<v8::Context>,
    module: v8::Local<v8::Module>,
    meta: v8::Local<v8::Object>,
) {
    v8::callback_scope!(unsafe scope, context);
    let st = runtime::state(scope);
    if let Some(name) = st.module_name(scope, module) {
        let k = v8::String::new(scope, "url").unwrap();
        if let Some(v) = v8::String::new(scope, &name) {
            meta.create_data_property(scope, k.into(), v.into());
        }
    }
}
