//! V8 startup snapshots (brief §6).
//!
//! A snapshot is built in a fresh snapshot-creator isolate on its own
//! thread (an isolate is created, used and dropped on one thread). The
//! source runs in a context with nothing but the language: no host
//! functions and no timers exist there, so none can be captured; the
//! microtask queue is drained before capture, and any promise created by
//! the source that is still pending at that point is an error: nothing
//! could ever settle it after loading.
//! Contexts created from a snapshot get their own copy of its heap: they
//! share nothing at run time.

use std::cell::RefCell;
use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::framing::{self, Kind};

/// A V8 startup snapshot: the heap state after running some source.
#[derive(Clone)]
pub struct Snapshot {
    /// Framed bytes (see `framing`): what `dump` returns and `load` takes.
    bytes: Arc<[u8]>,
    /// Where the V8 blob sits in `bytes` (checked once, at load/creation).
    blob: std::ops::Range<usize>,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot").field("bytes", &self.bytes.len()).finish()
    }
}

/// How long snapshot source may run before it is terminated.
pub const DEFAULT_SNAPSHOT_TIMEOUT: Duration = Duration::from_secs(60);

impl Snapshot {
    /// Runs `source` in a fresh context and captures the resulting heap.
    pub fn create(source: &str) -> Result<Snapshot> {
        Self::build(source, None, DEFAULT_SNAPSHOT_TIMEOUT)
    }

    /// Like [`Snapshot::create`] with a limit on how long `source` may run.
    pub fn create_with_timeout(source: &str, timeout: Duration) -> Result<Snapshot> {
        Self::build(source, None, timeout)
    }

    /// Returns a new snapshot with the same heap whose functions were
    /// compiled by running `warmup_source` first. The warm-up's own effects
    /// are discarded (it runs in a throwaway context); only the compiled code
    /// is kept, so contexts from the result start faster.
    pub fn warmup(&self, warmup_source: &str) -> Result<Snapshot> {
        let (_, source) = split(framing::snapshot_payload(&self.bytes)?)?;
        Self::build(source, Some(warmup_source), DEFAULT_SNAPSHOT_TIMEOUT)
    }

    /// The snapshot's bytes, to store and [`Snapshot::load`] later.
    pub fn dump(&self) -> Vec<u8> {
        self.bytes.to_vec()
    }

    /// Same as [`Snapshot::dump`] without copying.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Loads bytes from [`Snapshot::dump`]. Bytes from another V8 version,
    /// made with other V8 flags, truncated or corrupted are refused with
    /// [`Error::InvalidArgument`]; they never reach V8.
    pub fn load(bytes: &[u8]) -> Result<Snapshot> {
        crate::engine::engine();
        Self::from_framed(bytes.into())
    }

    fn from_framed(bytes: Arc<[u8]>) -> Result<Snapshot> {
        let payload = framing::snapshot_payload(&bytes)?;
        let (blob, _) = split(payload)?;
        let start = blob.as_ptr() as usize - bytes.as_ptr() as usize;
        let blob = start..start + blob.len();
        Ok(Snapshot { bytes, blob })
    }

    /// The framed bytes and where the V8 blob is in them.
    pub(crate) fn v8_blob(&self) -> (Arc<[u8]>, std::ops::Range<usize>) {
        (self.bytes.clone(), self.blob.clone())
    }

    fn build(source: &str, warmup: Option<&str>, timeout: Duration) -> Result<Snapshot> {
        let engine = crate::engine::engine();
        crate::engine::check_fork_safe(engine)?;
        crate::runtime::pin_read_only_heap();
        let source = source.to_owned();
        let warmup = warmup.map(str::to_owned);
        let handle = std::thread::Builder::new()
            .name("polyracer-snapshot".into())
            .stack_size(32 << 20)
            .spawn(move || build_on_this_thread(&source, warmup.as_deref(), timeout))
            .map_err(|e| Error::InvalidArgument(format!("cannot start the snapshot thread: {e}")))?;
        let bytes = handle.join().map_err(|_| Error::Disposed("snapshot creation panicked".into()))??;
        Self::from_framed(bytes.into())
    }
}

/// The snapshot isolate and the promises its source created.
type PromiseLog = (*const v8::Isolate, Vec<v8::Global<v8::Promise>>);

thread_local! {
    /// Promises created while snapshot source runs, to find pending ones.
    static PROMISES: RefCell<Option<PromiseLog>> = const { RefCell::new(None) };
}

unsafe extern "C" fn track_promise(t: v8::PromiseHookType, p: v8::Local<v8::Promise>, _parent: v8::Local<v8::Value>) {
    if t == v8::PromiseHookType::Init {
        PROMISES.with(|c| {
            if let Some((iso, list)) = &mut *c.borrow_mut() {
                // SAFETY: the pointer is the snapshot isolate of this thread,
                // set for exactly as long as its source runs.
                list.push(v8::Global::new(unsafe { &**iso }, p));
            }
        });
    }
}

/// The framed payload is `[blob length: u64][V8 blob][source]`: the source
/// is kept so `warmup` can rebuild from scratch. (A creator made from an
/// existing custom blob crashed V8 here when other isolates were alive.)
fn split(payload: &[u8]) -> Result<(&[u8], &str)> {
    let bad = || Error::InvalidArgument("snapshot refused: corrupt layout".into());
    let len = u64::from_le_bytes(payload.get(..8).ok_or_else(bad)?.try_into().unwrap());
    let len = usize::try_from(len).map_err(|_| bad())?;
    let blob = payload.get(8..8usize.checked_add(len).ok_or_else(bad)?).ok_or_else(bad)?;
    let source = std::str::from_utf8(&payload[8 + len..]).map_err(|_| bad())?;
    Ok((blob, source))
}

fn build_on_this_thread(source: &str, warmup: Option<&str>, timeout: Duration) -> Result<Vec<u8>> {
    let mut isolate = v8::Isolate::snapshot_creator(None, None);
    isolate.set_microtasks_policy(v8::MicrotasksPolicy::Explicit);
    isolate.set_capture_stack_trace_for_uncaught_exceptions(true, 32);
    isolate.set_promise_hook(track_promise);
    let iso_ptr: *const v8::Isolate = &*isolate;
    PROMISES.with(|c| *c.borrow_mut() = Some((iso_ptr, Vec::new())));

    // A watchdog terminates runaway snapshot source.
    let handle = isolate.thread_safe_handle();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if done_rx.recv_timeout(timeout) == Err(std::sync::mpsc::RecvTimeoutError::Timeout) {
            handle.terminate_execution();
            true
        } else {
            false
        }
    });

    let result = {
        v8::scope!(let scope, &mut isolate);
        let ctx = v8::Context::new(scope, Default::default());
        let outcome = {
            let scope = &mut v8::ContextScope::new(scope, ctx);
            run_source(scope, source, "<snapshot>").and_then(|()| match warmup {
                Some(w) => run_source(scope, w, "<warm-up>"),
                None => check_no_pending_promises(scope),
            })
        };
        match (outcome, warmup) {
            (Ok(()), None) => {
                scope.set_default_context(ctx);
                Ok(())
            }
            (Ok(()), Some(_)) => {
                // The warm-up ran in a throwaway context. Rebuild the state in
                // a fresh one: the same source hits the isolate's compilation
                // cache, so its functions share the code the warm-up compiled.
                PROMISES.with(|c| {
                    if let Some((_, list)) = &mut *c.borrow_mut() {
                        list.clear();
                    }
                });
                let fresh = v8::Context::new(scope, Default::default());
                let scope = &mut v8::ContextScope::new(scope, fresh);
                let r = run_source(scope, source, "<snapshot>").and_then(|()| check_no_pending_promises(scope));
                if r.is_ok() {
                    scope.set_default_context(fresh);
                }
                r
            }
            (Err(e), _) => Err(e),
        }
    };
    // The snapshot creator refuses to serialise while global handles exist.
    PROMISES.with(|c| *c.borrow_mut() = None);
    let _ = done_tx.send(());
    let timed_out = watchdog.join().unwrap_or(false);
    if let Err(e) = result {
        // rusty_v8 requires a creator isolate to end in create_blob: make one
        // from an empty context and throw it away.
        isolate.cancel_terminate_execution();
        {
            v8::scope!(let scope, &mut isolate);
            let empty = v8::Context::new(scope, Default::default());
            scope.set_default_context(empty);
        }
        let _ = isolate.create_blob(v8::FunctionCodeHandling::Clear);
        return Err(if timed_out { Error::Timeout } else { e });
    }
    let blob = isolate
        .create_blob(v8::FunctionCodeHandling::Keep)
        .ok_or_else(|| Error::InvalidArgument("V8 could not serialise this heap into a snapshot".into()))?;
    let mut payload = Vec::with_capacity(8 + blob.len() + source.len());
    payload.extend_from_slice(&(blob.len() as u64).to_le_bytes());
    payload.extend_from_slice(&blob);
    payload.extend_from_slice(source.as_bytes());
    Ok(framing::wrap(Kind::Snapshot, 0, &payload))
}

fn check_no_pending_promises(scope: &mut v8::PinScope) -> Result<()> {
    let pending = PROMISES.with(|c| {
        c.borrow()
            .as_ref()
            .map(|(_, list)| {
                list.iter().filter(|g| v8::Local::new(scope, *g).state() == v8::PromiseState::Pending).count()
            })
            .unwrap_or(0)
    });
    if pending > 0 {
        return Err(Error::InvalidArgument(format!(
            "the snapshot source leaves {pending} promise(s) pending; nothing could settle them after loading. \
             Let them settle (no timers or host functions exist while a snapshot is built)"
        )));
    }
    Ok(())
}

fn js_error(scope: &mut v8::PinScope, tc_exc: Option<v8::Local<v8::Value>>, compiling: bool) -> Error {
    let Some(exc) = tc_exc else { return Error::Terminated };
    let msg = v8::Exception::create_message(scope, exc);
    let ex = crate::runtime::exception(scope, None, exc, Some(msg));
    if compiling && ex.name == "SyntaxError" {
        Error::Parse(Box::new(ex))
    } else {
        Error::Js(Box::new(ex))
    }
}

fn run_source(scope: &mut v8::PinScope, source: &str, filename: &str) -> Result<()> {
    let code = crate::runtime::new_source(scope, source)?;
    let origin = crate::runtime::origin(scope, filename, false);
    v8::tc_scope!(let tc, scope);
    let Some(script) = v8::Script::compile(tc, code, Some(&origin)) else {
        let exc = tc.exception();
        return Err(if tc.has_terminated() { Error::Terminated } else { js_error(tc, exc, true) });
    };
    let Some(result) = script.run(tc) else {
        let exc = tc.exception();
        return Err(if tc.has_terminated() { Error::Terminated } else { js_error(tc, exc, false) });
    };
    let _ = result;
    tc.perform_microtask_checkpoint();
    if tc.has_terminated() {
        return Err(Error::Terminated);
    }
    Ok(())
}
