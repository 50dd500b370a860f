//! Compiled scripts and the code cache (brief §6).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::context::{Context, EvalOptions, Release, Shared};
use crate::error::{Error, Result};
use crate::framing::{self, Kind};
use crate::protocol::{Out, Request};
use crate::runtime::{caught, finish, new_source, origin, State};
use crate::value::Value;

/// V8's `CachedDataVersionTag`: changes with the V8 version and flags. Mix
/// it into the keys of a code-cache store.
pub fn cached_data_version_tag() -> u32 {
    crate::engine::engine();
    v8::script_compiler::cached_data_version_tag()
}

/// Options for [`Context::compile`].
#[derive(Clone, Copy, Debug, Default)]
pub struct CompileOptions<'a> {
    /// Script name for stack traces (default `<script>`).
    pub filename: Option<&'a str>,
    /// A code cache from [`Script::cached_data`] of an earlier compile of
    /// the same source. Rejected or corrupt bytes fall back to a normal
    /// compile and [`Script::cache_rejected`] reports it.
    pub cached_data: Option<&'a [u8]>,
    /// Produce a code cache (available as [`Script::cached_data`]) when none
    /// was consumed or the one given was rejected.
    pub produce_cache: bool,
}

#[derive(Debug)]
pub(crate) struct ScriptInfo {
    pub(crate) id: u32,
    pub(crate) cache_rejected: bool,
    pub(crate) cached_data: Option<Vec<u8>>,
}

struct ScriptInner {
    shared: Arc<Shared>,
    info: ScriptInfo,
    released: AtomicBool,
}

impl Drop for ScriptInner {
    fn drop(&mut self) {
        if !self.released.swap(true, Ordering::SeqCst) {
            self.shared.queue_release(Release::Script(self.info.id));
        }
    }
}

/// A compiled script that can run many times in its context.
#[derive(Clone)]
pub struct Script(Arc<ScriptInner>);

impl std::fmt::Debug for Script {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Script")
            .field("cache_rejected", &self.0.info.cache_rejected)
            .field("cached_data", &self.0.info.cached_data.as_ref().map(Vec::len))
            .finish()
    }
}

impl Script {
    /// Runs the script and returns its completion value.
    pub fn run(&self) -> Result<Value> {
        self.run_with(EvalOptions::default())
    }

    /// Runs with per-call options (`filename` is ignored: it was fixed at
    /// compile time).
    pub fn run_with(&self, options: EvalOptions) -> Result<Value> {
        if self.0.released.load(Ordering::SeqCst) {
            return Err(Error::Disposed("the script is disposed".into()));
        }
        self.0
            .shared
            .request(
                Request::RunScript {
                    id: self.0.info.id,
                    as_handle: options.as_handle,
                    await_promise: crate::protocol::AwaitMode::blocking(options.await_promise),
                    sink: None,
                },
                options.timeout,
            )?
            .into_value()
    }

    /// [`Script::run_with`], building the result through `sink` (see
    /// [`crate::transfer`]).
    pub fn run_into(&self, options: EvalOptions, sink: &mut dyn crate::transfer::Sink) -> Result<()> {
        if self.0.released.load(Ordering::SeqCst) {
            return Err(Error::Disposed("the script is disposed".into()));
        }
        self.0
            .shared
            .request(
                Request::RunScript {
                    id: self.0.info.id,
                    as_handle: options.as_handle,
                    await_promise: crate::protocol::AwaitMode::blocking(options.await_promise),
                    sink: Some(crate::protocol::SinkRef(&mut *sink)),
                },
                options.timeout,
            )?
            .into_sink(sink)
    }

    /// True when cached data was given and V8 (or the integrity check)
    /// refused it.
    pub fn cache_rejected(&self) -> bool {
        self.0.info.cache_rejected
    }

    /// The produced code cache, if `produce_cache` was asked for and no
    /// cache was consumed.
    pub fn cached_data(&self) -> Option<&[u8]> {
        self.0.info.cached_data.as_deref()
    }

    /// Releases the compiled script now (the context releases the rest when
    /// it is disposed). Idempotent; later `run`s give [`Error::Disposed`].
    pub fn dispose(&self) {
        if !self.0.released.swap(true, Ordering::SeqCst) {
            self.0.shared.queue_release(Release::Script(self.0.info.id));
        }
    }
}

impl Context {
    /// Compiles a script, optionally consuming or producing a code cache.
    pub fn compile(&self, source: &str, options: CompileOptions<'_>) -> Result<Script> {
        let out = self.shared_ref().request(
            Request::Compile {
                source,
                filename: options.filename,
                cached_data: options.cached_data,
                produce_cache: options.produce_cache,
            },
            None,
        )?;
        match out {
            Out::Script(info) => Ok(Script(Arc::new(ScriptInner {
                shared: self.shared_ref().clone(),
                info,
                released: AtomicBool::new(false),
            }))),
            other => Err(Error::Conversion(format!("unexpected reply {other:?}"))),
        }
    }
}

/// Owner thread: compile, consuming/producing a cache.
pub(crate) fn compile(
    scope: &mut v8::PinScope,
    st: &State,
    source: &str,
    filename: Option<&str>,
    cached_data: Option<&[u8]>,
    produce_cache: bool,
) -> Result<Out> {
    if produce_cache && st.in_callback() {
        return Err(Error::InvalidArgument(
            "cannot produce a code cache inside a host callback: V8 is mid-execution there; compile outside the callback"
                .into(),
        ));
    }
    let code = new_source(scope, source)?;
    let origin = origin(scope, filename.unwrap_or("<script>"), false);
    let (mut src, opts, refused) = cached_source(code, &origin, source, cached_data);
    let unbound = {
        v8::tc_scope!(let tc, scope);
        match v8::script_compiler::compile_unbound_script(
            tc,
            &mut src,
            opts,
            v8::script_compiler::NoCacheReason::NoReason,
        ) {
            Some(u) => u,
            None => return Err(caught(tc, st, true)),
        }
    };
    let rejected = refused || src.get_cached_data().is_some_and(|c| c.rejected());
    let produced = if produce_cache && (opts != v8::script_compiler::CompileOptions::ConsumeCodeCache || rejected) {
        unbound.create_code_cache().map(|c| framing::wrap(Kind::CodeCache, framing::subject(source), &c))
    } else {
        None
    };
    let runnable = if may_declare_lexicals(source) {
        Runnable::Rebind(v8::Global::new(scope, unbound))
    } else {
        Runnable::Bound(v8::Global::new(scope, unbound.bind_to_current_context(scope)))
    };
    let id = st.add_script(runnable);
    Ok(Out::Script(ScriptInfo { id, cache_rejected: rejected, cached_data: produced }))
}

/// A compiled script, as kept for repeated runs.
pub(crate) enum Runnable {
    /// Bound once and kept: each bind makes a new top-level function with
    /// fresh feedback, so a hot script would never tier up across runs.
    Bound(v8::Global<v8::Script>),
    /// Bound again for every run: running a script's top-level function a
    /// second time after it declared `let`/`const`/`class` at top level
    /// aborts V8 (the function's context is then the script context, not
    /// the native context it checks for). A fresh binding reports the
    /// redeclaration as a SyntaxError, as browsers and `node:vm` do.
    Rebind(v8::Global<v8::UnboundScript>),
}

/// Whether a script may declare top-level lexical bindings (see
/// `Runnable::Rebind`). Conservative: any occurrence of the keywords.
pub(crate) fn may_declare_lexicals(source: &str) -> bool {
    source.contains("let") || source.contains("const") || source.contains("class")
}

/// A compile source that consumes `cached` if it passes the integrity check
/// (see `framing`). Returns the source, the compile options and whether
/// the cache was refused before V8 saw it.
pub(crate) fn cached_source<'a>(
    code: v8::Local<'a, v8::String>,
    origin: &v8::ScriptOrigin<'a>,
    source: &str,
    cached: Option<&'a [u8]>,
) -> (v8::script_compiler::Source, v8::script_compiler::CompileOptions, bool) {
    match cached.map(|b| framing::unwrap(Kind::CodeCache, framing::subject(source), b)) {
        Some(Ok(p)) => (
            v8::script_compiler::Source::new_with_cached_data(code, Some(origin), v8::CachedData::new(p)),
            v8::script_compiler::CompileOptions::ConsumeCodeCache,
            false,
        ),
        refused => (
            v8::script_compiler::Source::new(code, Some(origin)),
            v8::script_compiler::CompileOptions::NoCompileOptions,
            refused.is_some(),
        ),
    }
}

pub(crate) fn run(
    scope: &mut v8::PinScope,
    st: &State,
    id: u32,
    as_handle: bool,
    await_promise: crate::protocol::AwaitMode,
    deadline: Option<std::time::Instant>,
    sink: Option<crate::protocol::SinkRef>,
) -> Result<Out> {
    let script = st.script_local(scope, id).ok_or_else(|| Error::Disposed("the script is disposed".into()))?;
    let v = {
        v8::tc_scope!(let tc, scope);
        match script.run(tc) {
            Some(v) => v,
            None => return Err(caught(tc, st, false)),
        }
    };
    finish(scope, st, v, as_handle, await_promise, deadline, sink)
}
