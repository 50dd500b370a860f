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

use std::cell::RefCell;
use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use magnus::error::{ErrorType, Tag};
use magnus::rb_sys::{protect, AsRawValue, FromRawValue};
use magnus::typed_data::{DataTypeBuilder, Obj};
use magnus::value::{Lazy, Opaque, ReprValue};
use magnus::{
    function, gc, method, prelude::*, DataType, DataTypeFunctions, Error, Exception, ExceptionClass, Fixnum, Float,
    Integer, IntoValue, RArray, RBignum, RClass, RHash, RModule, RString, Ruby, Symbol, Time, TryConvert, TypedData,
    Value,
};
use polyracer as pr;

// ------------------------------------------------------------ classes

static MODULE: Lazy<RModule> = Lazy::new(|ruby| ruby.define_module("Polyracer").expect("module Polyracer"));

fn module(ruby: &Ruby) -> RModule {
    ruby.get_inner(&MODULE)
}

macro_rules! lazy_class {
    ($name:ident, $ty:ty, $const:literal) => {
        static $name: Lazy<$ty> = Lazy::new(|ruby| {
            module(ruby).const_get($const).expect(concat!("Polyracer::", $const, " is defined in lib/polyracer"))
        });
    };
}
lazy_class!(E_PARSE, ExceptionClass, "ParseError");
lazy_class!(E_JS, ExceptionClass, "JSError");
lazy_class!(E_TIMEOUT, ExceptionClass, "TimeoutError");
lazy_class!(E_TERMINATED, ExceptionClass, "TerminatedError");
lazy_class!(E_OOM, ExceptionClass, "OutOfMemoryError");
lazy_class!(E_CONVERSION, ExceptionClass, "ConversionError");
lazy_class!(E_DISPOSED, ExceptionClass, "DisposedError");
lazy_class!(E_INVALID, ExceptionClass, "InvalidArgumentError");

static UNDEFINED: Lazy<Value> = Lazy::new(|ruby| module(ruby).const_get("UNDEFINED").expect("Polyracer::UNDEFINED"));
static C_SET: Lazy<RClass> = Lazy::new(|ruby| ruby.class_object().const_get("Set").expect("require 'set' first"));
/// Kept here so the GC never collects causes that JS still refers to.
static CAUSES: Lazy<RHash> = Lazy::new(|ruby| ruby.hash_new());

// ------------------------------------------------------------ Ruby exceptions carried through JS

/// A Ruby exception raised in a callback, travelling through JS as the
/// `HostError` payload. The exception itself stays in `CAUSES` (a GC root):
/// the payload may be dropped on the isolate's thread, where no Ruby API may
/// be called, so dropping only queues the id for removal under the GVL.
struct RbCause(u64);

static NEXT_CAUSE: AtomicU64 = AtomicU64::new(1);
static DEAD_CAUSES: Mutex<Vec<u64>> = Mutex::new(Vec::new());

impl Drop for RbCause {
    fn drop(&mut self) {
        DEAD_CAUSES.lock().unwrap_or_else(|e| e.into_inner()).push(self.0);
    }
}

fn sweep_causes(ruby: &Ruby) {
    let dead = std::mem::take(&mut *DEAD_CAUSES.lock().unwrap_or_else(|e| e.into_inner()));
    let causes = ruby.get_inner(&CAUSES);
    for id in dead {
        let _ = causes.delete::<u64, Value>(id);
    }
}

fn keep_cause(ruby: &Ruby, exc: Exception) -> Arc<RbCause> {
    sweep_causes(ruby);
    let id = NEXT_CAUSE.fetch_add(1, Ordering::Relaxed);
    let _ = ruby.get_inner(&CAUSES).aset(id, exc);
    Arc::new(RbCause(id))
}

fn cause_exception(ruby: &Ruby, cause: &RbCause) -> Option<Exception> {
    ruby.get_inner(&CAUSES).get(cause.0).and_then(Exception::from_value)
}

/// An exception from a callback that must not be swallowed by JS: it stops
/// the JS and is re-raised unchanged when the outermost call returns.
enum Escape {
    Raise(Arc<RbCause>),
    Kill,
    /// `throw` to a `catch` outside the JS call (how `Timeout.timeout`
    /// unwinds on this Ruby); the tag object sits in `CAUSES`.
    Throw(Arc<RbCause>),
}

thread_local! {
    static ESCAPE: RefCell<Option<Escape>> = const { RefCell::new(None) };
    /// The exception an interrupt (Thread#raise, Timeout) raised when a call
    /// nested in a callback returned: if it reaches the callback's boundary
    /// it escapes like the interrupt it is, instead of becoming a JS error.
    static INTERRUPT_EXC: RefCell<Option<Arc<RbCause>>> = const { RefCell::new(None) };
}

fn is_interrupt_exc(ruby: &Ruby, exc: Exception) -> bool {
    INTERRUPT_EXC.with(|i| {
        i.borrow().as_ref().and_then(|c| cause_exception(ruby, c)).is_some_and(|e| e.as_raw() == exc.as_raw())
    })
}

fn take_escape(ruby: &Ruby) -> Option<Error> {
    let esc = ESCAPE.with(|e| e.borrow_mut().take())?;
    Some(match esc {
        Escape::Raise(c) => match cause_exception(ruby, &c) {
            Some(exc) => Error::from(exc),
            None => Error::new(ruby.exception_runtime_error(), "lost exception from a callback"),
        },
        // Re-kill the thread from here, where magnus unwinds our frames first.
        Escape::Kill => match protect(|| unsafe { rb_sys::rb_thread_kill(rb_sys::rb_thread_current()) }) {
            Err(e) => e,
            Ok(_) => Error::new(ruby.exception_runtime_error(), "thread kill did not happen"),
        },
        Escape::Throw(tag) => {
            let tag = ruby.get_inner(&CAUSES).get(tag.0).unwrap_or_else(|| ruby.qnil().as_value());
            if let Some(exc) = Exception::from_value(tag) {
                // An exception used as a catch tag (Timeout::Error): `raise`
                // calls its #exception, which throws again with its own value.
                let r: Result<Value, Error> = ruby.module_kernel().funcall("raise", (exc,));
                return Some(r.err().unwrap_or_else(|| Error::from(exc)));
            }
            // Other tags: the catch gets nil (the thrown value is not kept).
            match protect(|| unsafe { throw_nil(tag) }) {
                Err(e) => e,
                Ok(_) => Error::new(ruby.exception_runtime_error(), "throw did not happen"),
            }
        }
    })
}

/// Exceptions that are not `StandardError` (Interrupt, SystemExit, ...) and
/// the classes listed in `Polyracer.escaping_exceptions` (Timeout::Error)
/// escape: JS cannot catch them.
fn escapes(ruby: &Ruby, exc: Exception) -> bool {
    if !exc.is_kind_of(ruby.exception_standard_error()) {
        return true;
    }
    let list: Result<RArray, _> = module(ruby).funcall("escaping_exceptions", ());
    match list {
        Ok(list) => list.into_iter().any(|c| RClass::from_value(c).is_some_and(|c| exc.is_kind_of(c))),
        Err(_) => false,
    }
}

unsafe fn throw_nil(tag: Value) -> rb_sys::VALUE {
    // SAFETY: the caller is inside `protect`; `rb_throw_obj` does not return.
    unsafe { rb_sys::rb_throw_obj(tag.as_raw(), rb_sys::Qnil as rb_sys::VALUE) };
    #[allow(unreachable_code)]
    (rb_sys::Qnil as rb_sys::VALUE)
}

/// The tag object of the `throw` being unwound: `errinfo` then holds
/// Ruby's internal throw record (`struct vm_throw_data`: flags, reserved,
/// throw_obj, ...), an imemo object with no Ruby-level accessor.
fn throw_tag(ruby: &Ruby) -> Option<Value> {
    const T_MASK: usize = 0x1f;
    const T_IMEMO: usize = 0x1a;
    // SAFETY: `rb_errinfo` is the current thread's pending jump object; an
    // imemo's header is at least four words, the third being `throw_obj`.
    unsafe {
        let info = rb_sys::rb_errinfo();
        let v = Value::from_raw(info);
        if v.is_nil() || rb_sys::SPECIAL_CONST_P(info) {
            return None;
        }
        let words = info as *const usize;
        if *words & T_MASK != T_IMEMO {
            return None;
        }
        let _ = ruby;
        Some(Value::from_raw(*words.add(2) as rb_sys::VALUE))
    }
}

fn host_error_from(ruby: &Ruby, ctx: &pr::Context, e: Error) -> pr::HostError {
    let exc = match e.error_type() {
        ErrorType::Jump(Tag::Fatal) => {
            ESCAPE.with(|s| *s.borrow_mut() = Some(Escape::Kill));
            ctx.terminate();
            return pr::HostError::new("the Ruby thread was killed");
        }
        ErrorType::Jump(Tag::Throw) if throw_tag(ruby).is_some() => {
            let tag = throw_tag(ruby).unwrap_or_else(|| ruby.qnil().as_value());
            sweep_causes(ruby);
            let id = NEXT_CAUSE.fetch_add(1, Ordering::Relaxed);
            let _ = ruby.get_inner(&CAUSES).aset(id, tag);
            ESCAPE.with(|s| {
                let mut s = s.borrow_mut();
                if s.is_none() {
                    *s = Some(Escape::Throw(Arc::new(RbCause(id))));
                }
            });
            ctx.terminate();
            return pr::HostError::new("a Ruby callback threw to a catch outside JavaScript");
        }
        ErrorType::Jump(tag) => {
            return pr::HostError::new(format!(
                "a Ruby callback cannot {} across JavaScript frames",
                format!("{tag:?}").to_lowercase()
            ))
        }
        ErrorType::Exception(exc) => *exc,
        ErrorType::Error(class, msg) => match class.new_instance((ruby.str_new(msg),)) {
            Ok(exc) => exc,
            Err(_) => return pr::HostError::new(msg.to_string()),
        },
    };
    let message: String = exc.funcall("message", ()).unwrap_or_default();
    let name = if exc.is_kind_of(ruby.exception_type_error()) || exc.is_kind_of(ruby.exception_arg_error()) {
        "TypeError"
    } else if exc.is_kind_of(ruby.exception_range_error()) {
        "RangeError"
    } else {
        "Error"
    };
    let cause = keep_cause(ruby, exc);
    if escapes(ruby, exc) || is_interrupt_exc(ruby, exc) {
        ESCAPE.with(|s| {
            let mut s = s.borrow_mut();
            if s.is_none() {
                *s = Some(Escape::Raise(cause.clone()));
            }
        });
        ctx.terminate();
    }
    pr::HostError::new(message).with_name(name).with_payload(cause)
}

// ------------------------------------------------------------ GVL

struct Job<F, R> {
    f: Option<F>,
    out: Option<std::thread::Result<R>>,
}

unsafe extern "C" fn run_job<F: FnOnce() -> R, R>(data: *mut c_void) -> *mut c_void {
    // SAFETY: `data` is the `Job` owned by the caller, which waits for us.
    let job = unsafe { &mut *(data as *mut Job<F, R>) };
    if let Some(f) = job.f.take() {
        job.out = Some(catch_unwind(AssertUnwindSafe(f)));
    }
    std::ptr::null_mut()
}

/// Set by the unblocking function, which may run in a signal handler (see
/// `without_gvl`): it only stores to an atomic. The waiting thread notices
/// through core's wait hook (`interrupt_requested`) and terminates its JS.
struct Unblock {
    fired: AtomicBool,
}

unsafe extern "C" fn unblock(data: *mut c_void) {
    // SAFETY: `data` is the `Unblock` of a `without_gvl` call still running.
    let u = unsafe { &*(data as *const Unblock) };
    u.fired.store(true, Ordering::SeqCst);
}

thread_local! {
    /// The `Unblock` of this thread's innermost `without_gvl` call.
    static CURRENT_UNBLOCK: std::cell::Cell<*const Unblock> = const { std::cell::Cell::new(std::ptr::null()) };
}

/// Core's wait hook: runs on a waiting thread every 50 ms; `true` terminates
/// the call it waits on.
fn interrupt_requested() -> bool {
    let p = CURRENT_UNBLOCK.with(|c| c.get());
    // SAFETY: the pointer is cleared before its `Unblock` goes out of scope.
    !p.is_null() && unsafe { (*p).fired.load(Ordering::SeqCst) }
}

fn panic_error(ruby: &Ruby, p: Box<dyn std::any::Any + Send>) -> Error {
    let msg = p
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".into());
    Error::new(ruby.exception_runtime_error(), format!("polyracer internal error: {msg}"))
}

/// Runs `f` with the GVL released. Interrupts (Thread#raise, Timeout, signals,
/// Thread#kill) terminate the running JS (through the wait hook, within
/// 50 ms) and are raised afterwards.
///
/// `rb_nogvl` with `RB_NOGVL_UBF_ASYNC_SAFE`: without it, Ruby starts (and
/// kills) a helper thread around every call made from the main thread while
/// it is the only thread, which cost ~40 µs per call here. The flag lets
/// Ruby call `unblock` from its signal handler, so `unblock` only stores an
/// atomic.
fn without_gvl<R>(ruby: &Ruby, f: impl FnOnce() -> R) -> Result<R, Error> {
    let u = Unblock { fired: AtomicBool::new(false) };
    let mut job = Job { f: Some(f), out: None };
    let prev = CURRENT_UNBLOCK.with(|c| c.replace(&u));
    let flags = (rb_sys::RB_NOGVL_INTR_FAIL | rb_sys::RB_NOGVL_UBF_ASYNC_SAFE) as std::os::raw::c_int;
    let outcome = loop {
        // SAFETY: both pointers outlive the call; `run_job` matches `job`'s type.
        unsafe {
            rb_sys::rb_nogvl(
                Some(run_job_of(&job)),
                &mut job as *mut _ as *mut c_void,
                Some(unblock),
                &u as *const _ as *mut c_void,
                flags,
            );
        }
        if let Some(e) = take_escape(ruby) {
            break Err(e);
        }
        let ran = job.f.is_none();
        if u.fired.swap(false, Ordering::SeqCst) || !ran {
            // Deliver the pending interrupt here, with no Rust frame between
            // Ruby and the `protect`.
            if let Err(e) = protect(|| {
                unsafe { rb_sys::rb_thread_check_ints() };
                ruby.qnil().as_value().as_raw()
            }) {
                if let (ErrorType::Exception(exc), false) = (e.error_type(), prev.is_null()) {
                    let c = keep_cause(ruby, *exc);
                    INTERRUPT_EXC.with(|i| *i.borrow_mut() = Some(c));
                }
                break Err(e);
            }
        }
        if ran {
            break Ok(());
        }
    };
    CURRENT_UNBLOCK.with(|c| c.set(prev));
    if prev.is_null() {
        INTERRUPT_EXC.with(|i| i.borrow_mut().take());
    }
    outcome?;
    match job.out.take() {
        Some(Ok(r)) => Ok(r),
        Some(Err(p)) => Err(panic_error(ruby, p)),
        None => Err(Error::new(ruby.exception_runtime_error(), "polyracer internal error: job did not run")),
    }
}

fn run_job_of<F: FnOnce() -> R, R>(_: &Job<F, R>) -> unsafe extern "C" fn(*mut c_void) -> *mut c_void {
    run_job::<F, R>
}

/// Runs `f` holding the GVL, from a thread that released it in `without_gvl`
/// (callbacks from JS arrive on that thread).
fn with_gvl<R>(f: impl FnOnce(&Ruby) -> R) -> R {
    // SAFETY: plain query of the current thread's state.
    if let Ok(ruby) = Ruby::get() {
        return f(&ruby);
    }
    let g = move || f(&unsafe { Ruby::get_unchecked() });
    let mut job = Job { f: Some(g), out: None };
    // SAFETY: `job` outlives the call; `run_job` matches its type.
    unsafe {
        rb_sys::rb_thread_call_with_gvl(Some(run_job_of(&job)), &mut job as *mut _ as *mut c_void);
    }
    match job.out.take() {
        Some(Ok(r)) => r,
        Some(Err(p)) => std::panic::resume_unwind(p),
        None => panic!("the Ruby callback did not run"),
    }
}

// ------------------------------------------------------------ errors

fn ivar(obj: Value, name: &std::ffi::CStr, value: Value) {
    // SAFETY: called with the GVL on a live object; `name` is NUL-terminated.
    unsafe {
        let id = rb_sys::rb_intern(name.as_ptr());
        rb_sys::rb_ivar_set(obj.as_raw(), id, value.as_raw());
    }
}

fn arg_error(ruby: &Ruby, msg: impl Into<String>) -> Error {
    Error::new(ruby.exception_arg_error(), msg.into())
}

fn conversion_error(ruby: &Ruby, msg: impl Into<String>) -> Error {
    Error::new(ruby.get_inner(&E_CONVERSION), msg.into())
}

/// A JS frame in Ruby's backtrace form: `file.js:3:in 'f'`.
fn backtrace_line(f: &pr::StackFrame) -> String {
    let file = f.file.as_deref().unwrap_or("<anonymous>");
    let func = f.function.as_deref().unwrap_or("<js>");
    format!("{file}:{}:in `{func}'", f.line)
}

/// Maps a core error to the matching `Polyracer::*Error`.
fn to_rb_err(ruby: &Ruby, owner: Option<Value>, e: pr::Error) -> Error {
    match build_err(ruby, owner, e) {
        Ok(exc) => Error::from(exc),
        Err(e) => e,
    }
}

fn build_err(ruby: &Ruby, owner: Option<Value>, e: pr::Error) -> Result<Exception, Error> {
    let (class, ex) = match &e {
        pr::Error::Parse(ex) => (&E_PARSE, Some(ex)),
        pr::Error::Js(ex) => (&E_JS, Some(ex)),
        pr::Error::Timeout => (&E_TIMEOUT, None),
        pr::Error::Terminated => (&E_TERMINATED, None),
        pr::Error::OutOfMemory => (&E_OOM, None),
        pr::Error::Conversion(_) => (&E_CONVERSION, None),
        pr::Error::Disposed(_) => (&E_DISPOSED, None),
        pr::Error::InvalidArgument(_) => (&E_INVALID, None),
    };
    let text = match ex {
        Some(ex) => ex.message.clone(),
        None => e.to_string(),
    };
    let exc: Exception = ruby.get_inner(class).new_instance((ruby.str_new(&text),))?;
    if let Some(ex) = ex {
        let e = exc.as_value();
        ivar(e, c"@js_name", ruby.str_new(&ex.name).as_value());
        ivar(e, c"@js_stack", ruby.str_new(&ex.stack).as_value());
        ivar(e, c"@filename", ex.filename.as_deref().map(|f| ruby.str_new(f)).into_value_with(ruby));
        ivar(e, c"@line", ex.line.into_value_with(ruby));
        ivar(e, c"@column", ex.column.into_value_with(ruby));
        let value = match owner {
            Some(owner) => to_rb(ruby, owner, (*ex.value).clone()).unwrap_or_else(|_| ruby.qnil().as_value()),
            None => ruby.qnil().as_value(),
        };
        ivar(e, c"@value", value);
        // JS frames first (they are deeper), then where Ruby called in.
        let bt = ruby.ary_new();
        for f in &ex.frames {
            bt.push(ruby.str_new(&backtrace_line(f)))?;
        }
        // SAFETY: called with the GVL; returns a new Array of Strings.
        let rb_bt = unsafe { Value::from_raw(rb_sys::rb_make_backtrace()) };
        if let Some(rb_bt) = RArray::from_value(rb_bt) {
            bt.concat(rb_bt)?;
        }
        let _: Value = exc.funcall("set_backtrace", (bt,))?;
        if let Some(cause) = ex.cause.as_deref().and_then(|c| c.downcast_ref::<RbCause>()) {
            if let Some(c) = cause_exception(ruby, cause) {
                // Ruby keeps a cause set before `raise` (the hidden `cause` ivar).
                ivar(e, c"cause", c.as_value());
            }
        }
    }
    Ok(exc)
}

/// Wraps a core result: escapes and interrupts already handled by `without_gvl`.
fn res<T>(ruby: &Ruby, owner: Option<Value>, r: Result<pr::Result<T>, Error>) -> Result<T, Error> {
    r?.map_err(|e| to_rb_err(ruby, owner, e))
}

/// Timeouts in seconds, validated by core (same range and message in every binding).
fn seconds(ruby: &Ruby, t: Option<Value>) -> Result<Option<Duration>, Error> {
    let Some(t) = t.filter(|t| !t.is_nil()) else { return Ok(None) };
    let invalid = |m: &str| to_rb_err(ruby, None, pr::Error::InvalidArgument(m.into()));
    let s: f64 = f64::try_convert(t).map_err(|_| invalid("timeout must be a number of seconds or nil"))?;
    pr::limits::optional_timeout(Some(s), pr::limits::TimeUnit::Seconds).map_err(|e| to_rb_err(ruby, None, e))
}

/// A memory limit in bytes (an Integer, or a Float with no fraction),
/// validated and rounded by core.
fn memory_limit(ruby: &Ruby, m: Option<Value>) -> Result<Option<usize>, Error> {
    let Some(m) = m.filter(|m| !m.is_nil()) else { return Ok(None) };
    let checked = if let Some(i) = magnus::Integer::from_value(m) {
        // A Bignum beyond i64 is out of range all the same.
        pr::limits::memory_limit(i.to_i64().map_or(i128::MAX, i128::from))
    } else if let Some(f) = magnus::Float::from_value(m) {
        pr::limits::memory_limit_f64(f.to_f64())
    } else {
        Err(pr::Error::InvalidArgument(format!("memory limit must be a whole number of bytes, not {}", unsafe {
            m.classname()
        })))
    };
    checked.map(Some).map_err(|e| to_rb_err(ruby, None, e))
}

// ------------------------------------------------------------ Ruby → JS

/// A conversion failure, with the path to where it happened.
enum ConvFail {
    At(String, Vec<String>),
    Ruby(Error),
}

impl From<Error> for ConvFail {
    fn from(e: Error) -> Self {
        ConvFail::Ruby(e)
    }
}

fn at(e: ConvFail, seg: impl FnOnce() -> String) -> ConvFail {
    match e {
        ConvFail::At(m, mut path) => {
            path.push(seg());
            ConvFail::At(m, path)
        }
        other => other,
    }
}

fn from_rb(ruby: &Ruby, v: Value) -> Result<pr::Value, Error> {
    let mut seen = Vec::new();
    from_rb_at(ruby, v, 0, &mut seen).map_err(|e| match e {
        ConvFail::Ruby(e) => e,
        ConvFail::At(msg, path) => {
            let mut p = String::from("$");
            for seg in path.iter().rev() {
                p.push_str(seg);
            }
            conversion_error(ruby, format!("{msg} at {p}"))
        }
    })
}

fn rstring_to_string(s: RString) -> Result<String, Error> {
    // SAFETY: the bytes are copied before any Ruby code runs.
    let bytes = unsafe { s.as_slice() };
    match std::str::from_utf8(bytes) {
        Ok(t) => Ok(t.to_owned()),
        Err(_) => Ok(String::from_utf8_lossy(bytes).into_owned()),
    }
}

fn from_rb_at(ruby: &Ruby, v: Value, depth: usize, seen: &mut Vec<usize>) -> Result<pr::Value, ConvFail> {
    if v.is_nil() {
        return Ok(pr::Value::Null);
    }
    let raw = v.as_raw();
    if raw == ruby.qtrue().as_raw() {
        return Ok(pr::Value::Bool(true));
    }
    if raw == ruby.qfalse().as_raw() {
        return Ok(pr::Value::Bool(false));
    }
    if let Some(i) = Fixnum::from_value(v) {
        return Ok(pr::Value::from(i.to_i64()));
    }
    if let Some(f) = Float::from_value(v) {
        return Ok(pr::Value::Number(f.to_f64()));
    }
    if let Some(s) = RString::from_value(v) {
        let idx = s.enc_get();
        if idx == ruby.ascii8bit_encindex() {
            // SAFETY: copied immediately.
            return Ok(pr::Value::Bytes(unsafe { s.as_slice() }.to_vec()));
        }
        if idx == ruby.utf8_encindex() || idx == ruby.usascii_encindex() {
            return Ok(pr::Value::String(rstring_to_string(s)?));
        }
        let utf8 = s.conv_enc(ruby.utf8_encoding())?;
        return Ok(pr::Value::String(rstring_to_string(utf8)?));
    }
    if let Some(sym) = Symbol::from_value(v) {
        return Ok(pr::Value::String(sym.name()?.into_owned()));
    }
    if let Some(b) = RBignum::from_value(v) {
        if let Ok(i) = b.to_i64() {
            return Ok(pr::Value::from(i));
        }
        let s: RString = b.funcall("to_s", ())?;
        let text = rstring_to_string(s)?;
        return text
            .parse::<pr::BigInt>()
            .map(pr::Value::BigInt)
            .map_err(|e| ConvFail::At(format!("bad Integer: {e}"), Vec::new()));
    }
    if let Ok(h) = <&JsRef>::try_convert(v) {
        return Ok(pr::Value::Handle(h.h.clone()));
    }
    if let Some(t) = Time::from_value(v) {
        let ts = t.timespec()?;
        return Ok(pr::Value::Date(ts.tv_sec as f64 * 1000.0 + (ts.tv_nsec as f64 / 1e6).floor()));
    }
    if raw == ruby.get_inner(&UNDEFINED).as_raw() {
        return Ok(pr::Value::Undefined);
    }
    let is_array = RArray::from_value(v);
    let is_hash = RHash::from_value(v);
    let is_set = is_array.is_none() && is_hash.is_none() && v.is_kind_of(ruby.get_inner(&C_SET));
    if is_array.is_none() && is_hash.is_none() && !is_set {
        return Err(ConvFail::At(
            format!("cannot convert a Ruby {} to JavaScript", unsafe { v.classname() }),
            Vec::new(),
        ));
    }
    if depth >= pr::MAX_DEPTH {
        return Err(ConvFail::At(format!("nesting deeper than {} levels", pr::MAX_DEPTH), Vec::new()));
    }
    // SAFETY: plain stack-limit query.
    if unsafe { rb_sys::ruby_stack_check() } != 0 {
        return Err(ConvFail::At("nesting too deep for this thread's stack".into(), Vec::new()));
    }
    if seen.contains(&(raw as usize)) {
        return Err(ConvFail::At("cyclic reference".into(), Vec::new()));
    }
    seen.push(raw as usize);
    let out = if let Some(a) = is_array {
        array_from_rb(ruby, a, depth, seen)
    } else if let Some(h) = is_hash {
        hash_from_rb(ruby, h, depth, seen)
    } else {
        let items: RArray = v.funcall("to_a", ())?;
        array_from_rb(ruby, items, depth, seen).map(|v| match v {
            pr::Value::Array(items) => pr::Value::Set(items),
            other => other,
        })
    };
    seen.pop();
    out
}

fn array_from_rb(ruby: &Ruby, a: RArray, depth: usize, seen: &mut Vec<usize>) -> Result<pr::Value, ConvFail> {
    let mut items = Vec::with_capacity(a.len());
    let mut i = 0;
    // Index by index: the array may change under us only through our own
    // conversions, which never call Ruby code that mutates it.
    while i < a.len() {
        let x: Value = a.entry(i as isize)?;
        items.push(from_rb_at(ruby, x, depth + 1, seen).map_err(|e| at(e, || format!("[{i}]")))?);
        i += 1;
    }
    Ok(pr::Value::Array(items))
}

fn hash_from_rb(ruby: &Ruby, h: RHash, depth: usize, seen: &mut Vec<usize>) -> Result<pr::Value, ConvFail> {
    let mut props: Vec<(String, pr::Value)> = Vec::with_capacity(h.len());
    let mut entries: Vec<(pr::Value, pr::Value)> = Vec::new();
    let mut plain = true;
    let mut fail: Option<ConvFail> = None;
    let r = h.foreach(|k: Value, x: Value| {
        let key = if let Some(s) = RString::from_value(k) {
            Some(rstring_to_string(s)?)
        } else if let Some(sym) = Symbol::from_value(k) {
            Some(sym.name()?.into_owned())
        } else {
            None
        };
        let label = || match &key {
            Some(k) => format!(".{k}"),
            None => "[key]".to_string(),
        };
        let val = match from_rb_at(ruby, x, depth + 1, seen) {
            Ok(v) => v,
            Err(e) => {
                fail = Some(at(e, label));
                return Ok(magnus::r_hash::ForEach::Stop);
            }
        };
        match key {
            Some(k) if plain => props.push((k, val)),
            _ => {
                if plain {
                    // A non-string key: the whole Hash becomes a Map.
                    plain = false;
                    entries.extend(props.drain(..).map(|(k, v)| (pr::Value::String(k), v)));
                }
                let kv = match from_rb_at(ruby, k, depth + 1, seen) {
                    Ok(v) => v,
                    Err(e) => {
                        fail = Some(at(e, || "[key]".into()));
                        return Ok(magnus::r_hash::ForEach::Stop);
                    }
                };
                entries.push((kv, val));
            }
        }
        Ok(magnus::r_hash::ForEach::Continue)
    });
    if let Some(f) = fail {
        return Err(f);
    }
    r?;
    Ok(if plain { pr::Value::Object(props) } else { pr::Value::Map(entries) })
}

fn args_from_rb(ruby: &Ruby, args: &[Value]) -> Result<Vec<pr::Value>, Error> {
    args.iter().map(|a| from_rb(ruby, *a)).collect()
}

// ------------------------------------------------------------ JS → Ruby

/// `owner` is the Ruby `Polyracer::Context` that new handles keep alive.
fn to_rb(ruby: &Ruby, owner: Value, v: pr::Value) -> Result<Value, Error> {
    let container = matches!(v, pr::Value::Array(_) | pr::Value::Object(_) | pr::Value::Map(_) | pr::Value::Set(_));
    // SAFETY: plain stack-limit query. Core caps nesting at MAX_DEPTH, but a
    // Ruby thread's stack can be smaller than that needs.
    if container && unsafe { rb_sys::ruby_stack_check() } != 0 {
        return Err(conversion_error(ruby, "nesting too deep for this thread's stack"));
    }
    Ok(match v {
        pr::Value::Undefined | pr::Value::Null => ruby.qnil().as_value(),
        pr::Value::Bool(b) => b.into_value_with(ruby),
        pr::Value::Integer(i) => ruby.integer_from_i64(i).as_value(),
        pr::Value::Number(n) => ruby.float_from_f64(n).as_value(),
        pr::Value::BigInt(b) => match i64::try_from(&b) {
            Ok(i) => ruby.integer_from_i64(i).as_value(),
            Err(_) => {
                let s = ruby.str_new(&b.to_string());
                let i: Integer = s.funcall("to_i", ())?;
                i.as_value()
            }
        },
        pr::Value::String(s) => ruby.str_new(&s).as_value(),
        pr::Value::Date(ms) => {
            if !ms.is_finite() {
                return Err(conversion_error(ruby, "an Invalid Date has no Ruby Time"));
            }
            let secs = (ms / 1000.0).floor();
            let nanos = ((ms - secs * 1000.0) * 1e6).round();
            let t = ruby.time_nano_new(secs as i64, nanos as i64)?;
            t.funcall("utc", ())?
        }
        pr::Value::Bytes(b) => ruby.enc_str_new(&b, ruby.ascii8bit_encoding()).as_value(),
        pr::Value::Array(items) => {
            let a = ruby.ary_new_capa(items.len());
            for item in items {
                a.push(to_rb(ruby, owner, item)?)?;
            }
            a.as_value()
        }
        pr::Value::Object(props) => {
            let h = ruby.hash_new();
            for (k, x) in props {
                h.aset(ruby.str_new(&k), to_rb(ruby, owner, x)?)?;
            }
            h.as_value()
        }
        pr::Value::Map(entries) => {
            let h = ruby.hash_new();
            for (k, x) in entries {
                h.aset(to_rb(ruby, owner, k)?, to_rb(ruby, owner, x)?)?;
            }
            h.as_value()
        }
        pr::Value::Set(items) => {
            let a = ruby.ary_new_capa(items.len());
            for item in items {
                a.push(to_rb(ruby, owner, item)?)?;
            }
            ruby.get_inner(&C_SET).new_instance((a,))?
        }
        pr::Value::Error(e) => {
            let exc: Exception = ruby.get_inner(&E_JS).new_instance((ruby.str_new(&e.message),))?;
            ivar(exc.as_value(), c"@js_name", ruby.str_new(&e.name).as_value());
            ivar(exc.as_value(), c"@js_stack", ruby.str_new(&e.stack).as_value());
            exc.as_value()
        }
        pr::Value::Handle(h) => ruby.obj_wrap(JsRef { h, owner: Opaque::from(owner) }).as_value(),
    })
}

// ------------------------------------------------------------ Context

/// `Polyracer::Context`: owns the core context and the Ruby objects JS may
/// call back into (marked so the GC keeps them while the context lives).
#[derive(TypedData)]
#[magnus(class = "Polyracer::Context", mark, size)]
struct RbContext {
    inner: pr::Context,
    keep: Mutex<Vec<Opaque<Value>>>,
    resolver: Mutex<Option<Opaque<Value>>>,
}

impl DataTypeFunctions for RbContext {
    fn mark(&self, marker: &gc::Marker) {
        for v in self.keep.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            marker.mark(*v);
        }
        if let Some(r) = *self.resolver.lock().unwrap_or_else(|e| e.into_inner()) {
            marker.mark(r);
        }
    }
}

fn eval_opts(
    ruby: &Ruby,
    filename: Option<String>,
    timeout: Option<Value>,
    await_promise: bool,
) -> Result<pr::EvalOptions, Error> {
    Ok(pr::EvalOptions { filename, timeout: seconds(ruby, timeout)?, as_handle: false, await_promise })
}

/// Runs a Ruby callable for JS, on the waiting thread, with the GVL.
fn call_ruby(
    ctx: &pr::Context,
    callable: Opaque<Value>,
    owner: Opaque<Value>,
    args: Vec<pr::Value>,
) -> Result<pr::Value, pr::HostError> {
    with_gvl(|ruby| {
        let owner = ruby.get_inner(owner);
        let run = || -> Result<pr::Value, Error> {
            let mut argv = Vec::with_capacity(args.len());
            for a in args {
                argv.push(to_rb(ruby, owner, a)?);
            }
            let r: Value = ruby.get_inner(callable).funcall("call", argv.as_slice())?;
            from_rb(ruby, r)
        };
        run().map_err(|e| host_error_from(ruby, ctx, e))
    })
}

impl RbContext {
    fn rb_new(
        ruby: &Ruby,
        timeout: Option<Value>,
        memory_limit: Option<Value>,
        snapshot: Option<&RbSnapshot>,
    ) -> Result<Obj<RbContext>, Error> {
        let options = pr::ContextOptions {
            timeout: seconds(ruby, timeout)?,
            memory_limit: self::memory_limit(ruby, memory_limit)?,
            snapshot: snapshot.map(|s| s.get()),
        };
        let inner = res(ruby, None, without_gvl(ruby, || pr::Context::new(options)))?;
        Ok(ruby.obj_wrap(RbContext { inner, keep: Mutex::new(Vec::new()), resolver: Mutex::new(None) }))
    }

    fn rb_eval(
        ruby: &Ruby,
        rb_self: Obj<Self>,
        code: RString,
        filename: Option<String>,
        timeout: Option<Value>,
        await_promise: bool,
    ) -> Result<Value, Error> {
        let opts = eval_opts(ruby, filename, timeout, await_promise)?;
        let code = rstring_to_string(code)?;
        let me = &*rb_self;
        let v = res(ruby, Some(rb_self.as_value()), without_gvl(ruby, || me.inner.eval_with(&code, opts)))?;
        to_rb(ruby, rb_self.as_value(), v)
    }

    fn call_impl(ruby: &Ruby, rb_self: Obj<Self>, args: &[Value], await_promise: bool) -> Result<Value, Error> {
        let Some((target, rest)) = args.split_first() else {
            return Err(arg_error(ruby, "call needs a function: a JSFunction, a global path or a function expression"));
        };
        let argv = args_from_rb(ruby, rest)?;
        let opts = pr::EvalOptions { await_promise, ..Default::default() };
        let me = &*rb_self;
        let owner = Some(rb_self.as_value());
        let v = if let Ok(f) = <&JsRef>::try_convert(*target) {
            let h = f.h.clone();
            res(ruby, owner, without_gvl(ruby, || me.inner.call_with(&h, &argv, opts)))?
        } else if let Some(s) = RString::from_value(*target) {
            let s = rstring_to_string(s)?;
            res(ruby, owner, without_gvl(ruby, || me.inner.call_with(s.as_str(), &argv, opts)))?
        } else if let Some(sym) = Symbol::from_value(*target) {
            let s = sym.name()?.into_owned();
            res(ruby, owner, without_gvl(ruby, || me.inner.call_with(s.as_str(), &argv, opts)))?
        } else {
            return Err(Error::new(
                ruby.exception_type_error(),
                "call needs a JSFunction, a global path or a function expression",
            ));
        };
        to_rb(ruby, rb_self.as_value(), v)
    }

    fn rb_call(ruby: &Ruby, rb_self: Obj<Self>, args: &[Value]) -> Result<Value, Error> {
        Self::call_impl(ruby, rb_self, args, false)
    }

    fn rb_call_await(ruby: &Ruby, rb_self: Obj<Self>, args: &[Value]) -> Result<Value, Error> {
        Self::call_impl(ruby, rb_self, args, true)
    }

    fn rb_set_global(ruby: &Ruby, rb_self: Obj<Self>, name: String, value: Value) -> Result<(), Error> {
        let v = from_rb(ruby, value)?;
        let me = &*rb_self;
        res(ruby, None, without_gvl(ruby, || me.inner.set_global(&name, v)))
    }

    fn rb_attach(ruby: &Ruby, rb_self: Obj<Self>, name: String, callable: Value) -> Result<(), Error> {
        if !callable.respond_to("call", false)? {
            return Err(Error::new(
                ruby.exception_type_error(),
                "attach needs a callable (a Proc, Method or object with #call)",
            ));
        }
        let me = &*rb_self;
        me.keep.lock().unwrap_or_else(|e| e.into_inner()).push(Opaque::from(callable));
        let (callable, owner) = (Opaque::from(callable), Opaque::from(rb_self.as_value()));
        let r = me.inner.expose(&name, move |ctx, args| call_ruby(ctx, callable, owner, args));
        res(ruby, None, Ok(r))
    }

    fn rb_terminate(&self) {
        self.inner.terminate();
    }

    fn rb_heap_stats(ruby: &Ruby, rb_self: Obj<Self>) -> Result<RHash, Error> {
        let me = &*rb_self;
        let s = res(ruby, None, without_gvl(ruby, || me.inner.heap_stats()))?;
        let h = ruby.hash_new();
        for (k, v) in [
            ("total_heap_size", s.total_heap_size),
            ("total_heap_size_executable", s.total_heap_size_executable),
            ("total_physical_size", s.total_physical_size),
            ("total_available_size", s.total_available_size),
            ("used_heap_size", s.used_heap_size),
            ("heap_size_limit", s.heap_size_limit),
            ("malloced_memory", s.malloced_memory),
            ("external_memory", s.external_memory),
            ("peak_malloced_memory", s.peak_malloced_memory),
            ("number_of_native_contexts", s.number_of_native_contexts),
            ("number_of_detached_contexts", s.number_of_detached_contexts),
        ] {
            h.aset(ruby.to_symbol(k), v)?;
        }
        Ok(h)
    }

    fn rb_low_memory_notification(ruby: &Ruby, rb_self: Obj<Self>) -> Result<(), Error> {
        let me = &*rb_self;
        res(ruby, None, without_gvl(ruby, || me.inner.low_memory_notification()))
    }

    fn rb_write_heap_snapshot(ruby: &Ruby, rb_self: Obj<Self>, path: String) -> Result<(), Error> {
        let me = &*rb_self;
        res(ruby, None, without_gvl(ruby, || me.inner.write_heap_snapshot(&path)))
    }

    fn rb_dispose(ruby: &Ruby, rb_self: Obj<Self>) -> Result<(), Error> {
        let me = &*rb_self;
        without_gvl(ruby, || me.inner.dispose())
    }

    fn rb_is_disposed(&self) -> bool {
        self.inner.is_disposed()
    }

    fn rb_compile(
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
        let s = res(
            ruby,
            Some(rb_self.as_value()),
            without_gvl(ruby, || {
                me.inner.compile(
                    &source,
                    pr::CompileOptions { filename: filename.as_deref(), cached_data: cache.as_deref(), produce_cache },
                )
            }),
        )?;
        Ok(ruby.obj_wrap(RbScript { s, owner: Opaque::from(rb_self.as_value()) }))
    }

    fn rb_eval_module(
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
        let m = res(
            ruby,
            Some(rb_self.as_value()),
            without_gvl(ruby, || me.inner.eval_module_with(&source, &filename, resolve, opts)),
        )?;
        to_rb(ruby, rb_self.as_value(), pr::Value::Handle(m.handle))
    }
}

// ------------------------------------------------------------ Script, Snapshot

#[derive(TypedData)]
#[magnus(class = "Polyracer::Script", mark, size, free_immediately)]
struct RbScript {
    s: pr::Script,
    owner: Opaque<Value>,
}

impl DataTypeFunctions for RbScript {
    fn mark(&self, marker: &gc::Marker) {
        marker.mark(self.owner);
    }
}

fn owner_ctx(ruby: &Ruby, owner: Opaque<Value>) -> Result<Obj<RbContext>, Error> {
    Obj::<RbContext>::try_convert(ruby.get_inner(owner))
}

impl RbScript {
    fn rb_run(ruby: &Ruby, rb_self: Obj<Self>, timeout: Option<Value>) -> Result<Value, Error> {
        let opts = eval_opts(ruby, None, timeout, false)?;
        let owner = owner_ctx(ruby, rb_self.owner)?;
        let v = res(ruby, Some(owner.as_value()), without_gvl(ruby, || rb_self.s.run_with(opts)))?;
        to_rb(ruby, owner.as_value(), v)
    }

    fn rb_cached_data(ruby: &Ruby, rb_self: Obj<Self>) -> Option<RString> {
        rb_self.s.cached_data().map(|b| ruby.enc_str_new(b, ruby.ascii8bit_encoding()))
    }

    fn rb_cache_rejected(&self) -> bool {
        self.s.cache_rejected()
    }

    fn rb_dispose(&self) {
        self.s.dispose();
    }
}

#[derive(TypedData)]
#[magnus(class = "Polyracer::Snapshot", size, free_immediately)]
struct RbSnapshot(Mutex<pr::Snapshot>);

impl DataTypeFunctions for RbSnapshot {}

impl RbSnapshot {
    fn get(&self) -> pr::Snapshot {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn rb_new(ruby: &Ruby, source: RString) -> Result<Obj<RbSnapshot>, Error> {
        let source = rstring_to_string(source)?;
        let s = res(ruby, None, without_gvl(ruby, || pr::Snapshot::create(&source)))?;
        Ok(ruby.obj_wrap(RbSnapshot(Mutex::new(s))))
    }

    fn rb_warmup(ruby: &Ruby, rb_self: Obj<Self>, source: RString) -> Result<Obj<RbSnapshot>, Error> {
        let source = rstring_to_string(source)?;
        let cur = rb_self.get();
        let s = res(ruby, None, without_gvl(ruby, || cur.warmup(&source)))?;
        *rb_self.0.lock().unwrap_or_else(|e| e.into_inner()) = s;
        Ok(rb_self)
    }

    fn rb_dump(ruby: &Ruby, rb_self: Obj<Self>) -> RString {
        ruby.enc_str_new(rb_self.get().as_bytes(), ruby.ascii8bit_encoding())
    }

    fn rb_load(ruby: &Ruby, bytes: RString) -> Result<Obj<RbSnapshot>, Error> {
        // SAFETY: copied before any Ruby code runs.
        let data = unsafe { bytes.as_slice() }.to_vec();
        let s = res(ruby, None, Ok(pr::Snapshot::load(&data)))?;
        Ok(ruby.obj_wrap(RbSnapshot(Mutex::new(s))))
    }
}

// ------------------------------------------------------------ handles

/// A JS object, function, promise, array or symbol that stays in its
/// context. The Ruby class depends on the kind (`JSFunction`, `JSPromise`
/// are subclasses of `JSObject`); it keeps its Ruby context alive.
struct JsRef {
    h: pr::JsHandle,
    owner: Opaque<Value>,
}

impl DataTypeFunctions for JsRef {
    fn mark(&self, marker: &gc::Marker) {
        marker.mark(self.owner);
    }
}

static C_JSFUNCTION: Lazy<RClass> = Lazy::new(|ruby| module(ruby).const_get("JSFunction").expect("JSFunction"));
static C_JSPROMISE: Lazy<RClass> = Lazy::new(|ruby| module(ruby).const_get("JSPromise").expect("JSPromise"));
static C_JSOBJECT: Lazy<RClass> = Lazy::new(|ruby| module(ruby).const_get("JSObject").expect("JSObject"));

unsafe impl TypedData for JsRef {
    fn class(ruby: &Ruby) -> RClass {
        ruby.get_inner(&C_JSOBJECT)
    }

    fn data_type() -> &'static DataType {
        static DATA_TYPE: DataType =
            DataTypeBuilder::<JsRef>::new(c"Polyracer::JSObject").mark().size().free_immediately().build();
        &DATA_TYPE
    }

    fn class_for(ruby: &Ruby, value: &Self) -> RClass {
        match value.h.kind() {
            pr::HandleKind::Function => ruby.get_inner(&C_JSFUNCTION),
            pr::HandleKind::Promise => ruby.get_inner(&C_JSPROMISE),
            _ => ruby.get_inner(&C_JSOBJECT),
        }
    }
}

impl JsRef {
    /// Runs a handle operation with the GVL released.
    fn op<T>(ruby: &Ruby, rb_self: &Obj<Self>, f: impl FnOnce(&pr::JsHandle) -> pr::Result<T>) -> Result<T, Error> {
        let owner = Some(ruby.get_inner(rb_self.owner));
        let h = &rb_self.h;
        res(ruby, owner, without_gvl(ruby, || f(h)))
    }

    fn wrap(ruby: &Ruby, rb_self: &Obj<Self>, v: pr::Value) -> Result<Value, Error> {
        to_rb(ruby, ruby.get_inner(rb_self.owner), v)
    }

    fn rb_call(ruby: &Ruby, rb_self: Obj<Self>, args: &[Value]) -> Result<Value, Error> {
        let argv = args_from_rb(ruby, args)?;
        let v = Self::op(ruby, &rb_self, |h| h.call(&argv))?;
        Self::wrap(ruby, &rb_self, v)
    }

    fn rb_call_timeout(ruby: &Ruby, rb_self: Obj<Self>, timeout: Option<Value>, args: RArray) -> Result<Value, Error> {
        let t = seconds(ruby, timeout)?;
        let argv = args_from_rb(ruby, &args.into_iter().collect::<Vec<Value>>())?;
        let v = Self::op(ruby, &rb_self, |h| h.call_with_timeout(&argv, t))?;
        Self::wrap(ruby, &rb_self, v)
    }

    fn rb_call_method(ruby: &Ruby, rb_self: Obj<Self>, args: &[Value]) -> Result<Value, Error> {
        let Some((name, rest)) = args.split_first() else {
            return Err(arg_error(ruby, "call_method needs a method name"));
        };
        let name: String = match Symbol::from_value(*name) {
            Some(s) => s.name()?.into_owned(),
            None => String::try_convert(*name)?,
        };
        let argv = args_from_rb(ruby, rest)?;
        let v = Self::op(ruby, &rb_self, |h| h.call_method(&name, &argv))?;
        Self::wrap(ruby, &rb_self, v)
    }

    fn rb_construct(ruby: &Ruby, rb_self: Obj<Self>, args: &[Value]) -> Result<Value, Error> {
        let argv = args_from_rb(ruby, args)?;
        let v = Self::op(ruby, &rb_self, |h| h.construct(&argv))?;
        Self::wrap(ruby, &rb_self, v)
    }

    fn key(ruby: &Ruby, key: Value) -> Result<pr::Value, Error> {
        if let Some(s) = Symbol::from_value(key) {
            return Ok(pr::Value::String(s.name()?.into_owned()));
        }
        from_rb(ruby, key)
    }

    fn rb_get(ruby: &Ruby, rb_self: Obj<Self>, key: Value) -> Result<Value, Error> {
        let k = Self::key(ruby, key)?;
        let v = Self::op(ruby, &rb_self, |h| h.get(k))?;
        Self::wrap(ruby, &rb_self, v)
    }

    fn rb_set(ruby: &Ruby, rb_self: Obj<Self>, key: Value, value: Value) -> Result<Value, Error> {
        let (k, v) = (Self::key(ruby, key)?, from_rb(ruby, value)?);
        Self::op(ruby, &rb_self, |h| h.set(k, v))?;
        Ok(value)
    }

    fn rb_delete(ruby: &Ruby, rb_self: Obj<Self>, key: Value) -> Result<bool, Error> {
        let k = Self::key(ruby, key)?;
        Self::op(ruby, &rb_self, |h| h.delete(k))
    }

    fn rb_keys(ruby: &Ruby, rb_self: Obj<Self>) -> Result<Vec<String>, Error> {
        Self::op(ruby, &rb_self, |h| h.keys())
    }

    fn rb_length(ruby: &Ruby, rb_self: Obj<Self>) -> Result<usize, Error> {
        Self::op(ruby, &rb_self, |h| h.length())
    }

    fn rb_to_ruby(ruby: &Ruby, rb_self: Obj<Self>) -> Result<Value, Error> {
        let v = Self::op(ruby, &rb_self, |h| h.to_value())?;
        Self::wrap(ruby, &rb_self, v)
    }

    fn rb_to_js_string(ruby: &Ruby, rb_self: Obj<Self>) -> Result<String, Error> {
        Self::op(ruby, &rb_self, |h| h.to_js_string())
    }

    fn rb_await(ruby: &Ruby, rb_self: Obj<Self>, timeout: Option<Value>) -> Result<Value, Error> {
        let t = seconds(ruby, timeout)?;
        let v = Self::op(ruby, &rb_self, |h| h.await_promise(t))?;
        Self::wrap(ruby, &rb_self, v)
    }

    fn rb_state(ruby: &Ruby, rb_self: Obj<Self>) -> Result<Symbol, Error> {
        let s = Self::op(ruby, &rb_self, |h| h.promise_state())?;
        Ok(ruby.to_symbol(s))
    }

    fn rb_kind(ruby: &Ruby, rb_self: Obj<Self>) -> Symbol {
        ruby.to_symbol(rb_self.h.kind().name())
    }

    fn rb_context(ruby: &Ruby, rb_self: Obj<Self>) -> Value {
        ruby.get_inner(rb_self.owner)
    }

    fn rb_same(rb_self: Obj<Self>, other: Value) -> bool {
        <&JsRef>::try_convert(other).is_ok_and(|o| o.h.same_handle(&rb_self.h))
    }
}

// ------------------------------------------------------------ module

fn rb_configure(ruby: &Ruby, flags: Vec<String>, single_threaded: bool) -> Result<(), Error> {
    res(ruby, None, Ok(pr::configure(pr::EngineOptions { flags, single_threaded })))
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

    let c = m.define_class("Context", ruby.class_object())?;
    c.undef_default_alloc_func();
    c.define_singleton_method("__new", function!(RbContext::rb_new, 3))?;
    c.define_method("__eval", method!(RbContext::rb_eval, 4))?;
    c.define_method("call", method!(RbContext::rb_call, -1))?;
    c.define_method("call_await", method!(RbContext::rb_call_await, -1))?;
    c.define_method("__set_global", method!(RbContext::rb_set_global, 2))?;
    c.define_method("__attach", method!(RbContext::rb_attach, 2))?;
    c.define_method("terminate", method!(RbContext::rb_terminate, 0))?;
    c.define_method("heap_stats", method!(RbContext::rb_heap_stats, 0))?;
    c.define_method("low_memory_notification", method!(RbContext::rb_low_memory_notification, 0))?;
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
