//! Small helpers over raw N-API calls. The binding converts values with raw
//! calls (no intermediate `napi::JsValue` wrappers) because conversion is on
//! every call's hot path.

use std::ffi::c_void;
use std::ptr;

use napi::bindgen_prelude::{FromNapiValue, ToNapiValue, TypeName, ValidateNapiValue, ValueType};
use napi::sys;

pub type Env = sys::napi_env;
pub type Val = sys::napi_value;

/// The status napi-rs treats as "an exception is already pending": it
/// returns without throwing again.
pub fn pending() -> napi::Error {
    napi::Error::new(napi::Status::PendingException, String::new())
}

pub fn check(status: sys::napi_status) -> napi::Result<()> {
    match status {
        sys::Status::napi_ok => Ok(()),
        sys::Status::napi_pending_exception => Err(pending()),
        other => Err(napi::Error::new(napi::Status::from(other), format!("N-API call failed with status {other}"))),
    }
}

macro_rules! napi_call {
    ($f:ident($($arg:expr),* $(,)?)) => {
        $crate::raw::check(unsafe { napi::sys::$f($($arg),*) })
    };
}
pub(crate) use napi_call;

pub fn type_of(env: Env, v: Val) -> napi::Result<i32> {
    let mut t = 0;
    napi_call!(napi_typeof(env, v, &mut t))?;
    Ok(t)
}

pub fn undefined(env: Env) -> napi::Result<Val> {
    let mut v = ptr::null_mut();
    napi_call!(napi_get_undefined(env, &mut v))?;
    Ok(v)
}

pub fn null(env: Env) -> napi::Result<Val> {
    let mut v = ptr::null_mut();
    napi_call!(napi_get_null(env, &mut v))?;
    Ok(v)
}

pub fn boolean(env: Env, b: bool) -> napi::Result<Val> {
    let mut v = ptr::null_mut();
    napi_call!(napi_get_boolean(env, b, &mut v))?;
    Ok(v)
}

pub fn number(env: Env, n: f64) -> napi::Result<Val> {
    let mut v = ptr::null_mut();
    napi_call!(napi_create_double(env, n, &mut v))?;
    Ok(v)
}

pub fn int(env: Env, n: i64) -> napi::Result<Val> {
    let mut v = ptr::null_mut();
    if let Ok(small) = i32::try_from(n) {
        napi_call!(napi_create_int32(env, small, &mut v))?;
    } else {
        napi_call!(napi_create_int64(env, n, &mut v))?;
    }
    Ok(v)
}

pub fn string(env: Env, s: &str) -> napi::Result<Val> {
    let mut v = ptr::null_mut();
    napi_call!(napi_create_string_utf8(env, s.as_ptr().cast(), s.len() as isize, &mut v))?;
    Ok(v)
}

pub fn get_string(env: Env, v: Val) -> napi::Result<String> {
    // Most strings (object keys) are short: one call into a stack buffer.
    let mut small = [0u8; 128];
    let mut written = 0usize;
    napi_call!(napi_get_value_string_utf8(env, v, small.as_mut_ptr().cast(), small.len(), &mut written))?;
    if written + 1 < small.len() {
        // SAFETY: N-API writes UTF-8 (lone surrogates become U+FFFD).
        return Ok(unsafe { std::str::from_utf8_unchecked(&small[..written]) }.to_owned());
    }
    let mut len = 0usize;
    napi_call!(napi_get_value_string_utf8(env, v, ptr::null_mut(), 0, &mut len))?;
    let mut buf: Vec<u8> = Vec::with_capacity(len + 1);
    napi_call!(napi_get_value_string_utf8(env, v, buf.as_mut_ptr().cast(), len + 1, &mut written))?;
    // SAFETY: N-API initialised `written` bytes, UTF-8.
    unsafe {
        buf.set_len(written);
        Ok(String::from_utf8_unchecked(buf))
    }
}

pub fn get_f64(env: Env, v: Val) -> napi::Result<f64> {
    let mut n = 0.0;
    napi_call!(napi_get_value_double(env, v, &mut n))?;
    Ok(n)
}

pub fn get_bool(env: Env, v: Val) -> napi::Result<bool> {
    let mut b = false;
    napi_call!(napi_get_value_bool(env, v, &mut b))?;
    Ok(b)
}

pub fn object(env: Env) -> napi::Result<Val> {
    let mut v = ptr::null_mut();
    napi_call!(napi_create_object(env, &mut v))?;
    Ok(v)
}

pub fn array(env: Env, len: usize) -> napi::Result<Val> {
    let mut v = ptr::null_mut();
    napi_call!(napi_create_array_with_length(env, len, &mut v))?;
    Ok(v)
}

pub fn get_element(env: Env, v: Val, i: u32) -> napi::Result<Val> {
    let mut out = ptr::null_mut();
    napi_call!(napi_get_element(env, v, i, &mut out))?;
    Ok(out)
}

pub fn set_element(env: Env, v: Val, i: u32, x: Val) -> napi::Result<()> {
    napi_call!(napi_set_element(env, v, i, x))
}

pub fn get_named(env: Env, obj: Val, name: &std::ffi::CStr) -> napi::Result<Val> {
    let mut out = ptr::null_mut();
    napi_call!(napi_get_named_property(env, obj, name.as_ptr(), &mut out))?;
    Ok(out)
}

pub fn set_named(env: Env, obj: Val, name: &std::ffi::CStr, v: Val) -> napi::Result<()> {
    napi_call!(napi_set_named_property(env, obj, name.as_ptr(), v))
}

pub fn is(env: Env, f: unsafe extern "C" fn(Env, Val, *mut bool) -> sys::napi_status, v: Val) -> napi::Result<bool> {
    let mut b = false;
    check(unsafe { f(env, v, &mut b) })?;
    Ok(b)
}

pub fn call(env: Env, this: Val, f: Val, args: &[Val]) -> napi::Result<Val> {
    let mut out = ptr::null_mut();
    napi_call!(napi_call_function(env, this, f, args.len(), args.as_ptr(), &mut out))?;
    Ok(out)
}

pub fn new_ref(env: Env, v: Val) -> napi::Result<sys::napi_ref> {
    let mut r = ptr::null_mut();
    napi_call!(napi_create_reference(env, v, 1, &mut r))?;
    Ok(r)
}

pub fn ref_value(env: Env, r: sys::napi_ref) -> napi::Result<Val> {
    let mut v = ptr::null_mut();
    napi_call!(napi_get_reference_value(env, r, &mut v))?;
    Ok(v)
}

pub fn is_exception_pending(env: Env) -> bool {
    let mut b = false;
    unsafe { sys::napi_is_exception_pending(env, &mut b) };
    b
}

pub fn take_exception(env: Env) -> napi::Result<Val> {
    let mut v = ptr::null_mut();
    napi_call!(napi_get_and_clear_last_exception(env, &mut v))?;
    Ok(v)
}

pub fn throw(env: Env, v: Val) -> napi::Error {
    unsafe { sys::napi_throw(env, v) };
    pending()
}

/// A `Uint8Array` holding a copy of `bytes`: one copy, into memory that is
/// not zeroed first for large buffers (`napi_create_arraybuffer` zeroes
/// its memory, which for 64 MiB cost as much as the copy). Node's own
/// memory, not an external ArrayBuffer over memory core could reuse: its
/// finalizer waits for the event loop, so a synchronous loop of 64 MiB
/// copies out kept every buffer and ran a full GC per call (155 ms each).
pub fn copy_uint8array(env: Env, bytes: &[u8]) -> napi::Result<Val> {
    let mut data: *mut c_void = ptr::null_mut();
    let mut ab = ptr::null_mut();
    if bytes.len() >= UNPOOLED_BUFFER {
        // Node's Buffers this large have an ArrayBuffer of their own (small
        // ones share a pool), uninitialised: the view covers all of it.
        let mut buf = ptr::null_mut();
        napi_call!(napi_create_buffer(env, bytes.len(), &mut data, &mut buf))?;
        let (mut ty, mut n, mut d, mut off) = (0, 0usize, ptr::null_mut(), 0usize);
        napi_call!(napi_get_typedarray_info(env, buf, &mut ty, &mut n, &mut d, &mut ab, &mut off))?;
        if off != 0 {
            return Err(napi::Error::from_reason("unexpected pooled Buffer"));
        }
    } else {
        napi_call!(napi_create_arraybuffer(env, bytes.len(), &mut data, &mut ab))?;
    }
    if !bytes.is_empty() {
        // SAFETY: `data` is the new buffer's `bytes.len()` bytes. V8 frees
        // ArrayBuffers at a collection, many at once.
        unsafe {
            polyracer::transfer::copy_to_fresh(data.cast::<u8>(), bytes, polyracer::transfer::HostFrees::Collected)
        };
    }
    let mut out = ptr::null_mut();
    napi_call!(napi_create_typedarray(env, sys::TypedarrayType::uint8_array, bytes.len(), ab, 0, &mut out))?;
    Ok(out)
}

/// A `Uint8Array` over sandbox memory, without a copy: its ArrayBuffer is
/// external and owns `bytes` (freed by its finalizer when Node collects
/// it). `None` when this Node forbids external buffers (a V8 sandbox
/// build), or for no bytes: the caller copies instead.
pub fn shared_uint8array(env: Env, bytes: polyracer::transfer::SharedBytes) -> napi::Result<Option<Val>> {
    unsafe extern "C" fn release(_env: Env, _data: *mut c_void, hint: *mut c_void) {
        // SAFETY: `hint` is the box made below, released once, here.
        drop(unsafe { Box::from_raw(hint as *mut polyracer::transfer::SharedBytes) });
    }
    if bytes.is_empty() {
        return Ok(None);
    }
    let (ptr_, len) = (bytes.as_ptr(), bytes.len());
    let hint = Box::into_raw(Box::new(bytes)) as *mut c_void;
    let mut ab = ptr::null_mut();
    // SAFETY: `len` bytes at `ptr_`, kept alive by `hint` until `release`.
    let st = unsafe { sys::napi_create_external_arraybuffer(env, ptr_.cast(), len, Some(release), hint, &mut ab) };
    if st != sys::Status::napi_ok {
        // SAFETY: not handed to Node: ours to free.
        drop(unsafe { Box::from_raw(hint as *mut polyracer::transfer::SharedBytes) });
        if st == sys::Status::napi_no_external_buffers_allowed {
            return Ok(None);
        }
        return Err(napi::Error::from_reason(format!("napi_create_external_arraybuffer failed ({st})")));
    }
    let mut out = ptr::null_mut();
    napi_call!(napi_create_typedarray(env, sys::TypedarrayType::uint8_array, len, ab, 0, &mut out))?;
    Ok(Some(out))
}

/// Node pools Buffers below half its 8 KiB pool size; well above that
/// each has its own memory.
const UNPOOLED_BUFFER: usize = 64 << 10;

pub fn buffer_copy(env: Env, bytes: &[u8]) -> napi::Result<Val> {
    let mut data: *mut c_void = ptr::null_mut();
    let mut out = ptr::null_mut();
    napi_call!(napi_create_buffer_copy(env, bytes.len(), bytes.as_ptr().cast(), &mut data, &mut out))?;
    Ok(out)
}

/// Where the bytes of an ArrayBuffer, typed array, DataView or Buffer are,
/// if `v` is one (valid while `v` is alive and not detached or resized).
pub fn bytes_ptr_of(env: Env, v: Val) -> napi::Result<Option<(*const u8, usize)>> {
    let (mut data, mut len): (*mut c_void, usize) = (ptr::null_mut(), 0);
    if is(env, sys::napi_is_typedarray, v)? {
        let (mut ty, mut n, mut ab, mut off) = (0, 0usize, ptr::null_mut(), 0usize);
        napi_call!(napi_get_typedarray_info(env, v, &mut ty, &mut n, &mut data, &mut ab, &mut off))?;
        len = n * element_size(ty);
    } else if is(env, sys::napi_is_arraybuffer, v)? {
        napi_call!(napi_get_arraybuffer_info(env, v, &mut data, &mut len))?;
    } else if is(env, sys::napi_is_dataview, v)? {
        let (mut ab, mut off) = (ptr::null_mut(), 0usize);
        napi_call!(napi_get_dataview_info(env, v, &mut len, &mut data, &mut ab, &mut off))?;
    } else {
        return Ok(None);
    }
    if len == 0 || data.is_null() {
        return Ok(Some((ptr::null(), 0)));
    }
    Ok(Some((data as *const u8, len)))
}

fn element_size(ty: sys::napi_typedarray_type) -> usize {
    use sys::TypedarrayType as T;
    match ty {
        T::int8_array | T::uint8_array | T::uint8_clamped_array => 1,
        T::int16_array | T::uint16_array => 2,
        T::int32_array | T::uint32_array | T::float32_array => 4,
        _ => 8,
    }
}

/// The arguments and `data` pointer of a raw N-API callback.
pub struct CbArgs {
    pub argv: Vec<Val>,
    pub data: *mut c_void,
}

pub fn cb_args(env: Env, info: sys::napi_callback_info) -> napi::Result<CbArgs> {
    let mut argc = 8usize;
    let mut argv = vec![ptr::null_mut(); 8];
    let mut data = ptr::null_mut();
    napi_call!(napi_get_cb_info(env, info, &mut argc, argv.as_mut_ptr(), ptr::null_mut(), &mut data))?;
    if argc > argv.len() {
        argv = vec![ptr::null_mut(); argc];
        napi_call!(napi_get_cb_info(env, info, &mut argc, argv.as_mut_ptr(), ptr::null_mut(), ptr::null_mut()))?;
    }
    argv.truncate(argc);
    Ok(CbArgs { argv, data })
}

/// Runs a raw callback's body: a panic (a bug) becomes a JS exception
/// instead of unwinding into Node.
pub fn guard(env: Env, body: impl FnOnce() -> napi::Result<Val>) -> Val {
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body))
        .unwrap_or_else(|_| Err(napi::Error::from_reason("polyracer: internal error (panic) in the native addon")));
    finish(env, r)
}

/// Ends a raw callback: the value, or null with the exception thrown.
pub fn finish(env: Env, r: napi::Result<Val>) -> Val {
    match r {
        Ok(v) => v,
        Err(e) => {
            if e.status != napi::Status::PendingException && !is_exception_pending(env) {
                if let Ok(msg) = string(env, &e.reason) {
                    let mut err = ptr::null_mut();
                    unsafe { sys::napi_create_error(env, ptr::null_mut(), msg, &mut err) };
                    unsafe { sys::napi_throw(env, err) };
                }
            }
            ptr::null_mut()
        }
    }
}

pub fn function(
    env: Env,
    name: &str,
    cb: unsafe extern "C" fn(Env, sys::napi_callback_info) -> Val,
    data: *mut c_void,
) -> napi::Result<Val> {
    let mut f = ptr::null_mut();
    napi_call!(napi_create_function(env, name.as_ptr().cast(), name.len() as isize, Some(cb), data, &mut f))?;
    Ok(f)
}

/// A raw JS value passed through unchanged (typed in the `ts_*` attributes).
pub struct JsVal(pub Val);

impl FromNapiValue for JsVal {
    unsafe fn from_napi_value(_env: sys::napi_env, v: sys::napi_value) -> napi::Result<Self> {
        Ok(JsVal(v))
    }
}

impl ToNapiValue for JsVal {
    unsafe fn to_napi_value(_env: sys::napi_env, v: Self) -> napi::Result<sys::napi_value> {
        Ok(v.0)
    }
}

impl TypeName for JsVal {
    fn type_name() -> &'static str {
        "unknown"
    }
    fn value_type() -> ValueType {
        ValueType::Unknown
    }
}

impl ValidateNapiValue for JsVal {}
