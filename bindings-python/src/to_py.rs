//! JS → Python: a `polyracer::transfer::Sink` that builds Python objects
//! directly while core walks the JS value (no intermediate tree).

use polyracer as pr;
use polyracer::transfer::{Halt, JsStr, Key, Sink};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyFloat};

use crate::types::{conversion, error_class, undefined, JSArray, JSFunction, JSObject, JSPromise, JSSymbol};

/// Pauses Python's cyclic GC while a container result is built: every new
/// list and dict counts towards a collection, and for a 1 MB result the
/// collections it triggered (which traverse the half-built tree) were ~15%
/// of the conversion (perf). The previous state is restored on drop.
struct GcPaused(bool);

impl GcPaused {
    fn new() -> GcPaused {
        // SAFETY: the GIL is held; stable ABI ≥ 3.10.
        GcPaused(unsafe { ffi::PyGC_Disable() } != 0)
    }
}

impl Drop for GcPaused {
    fn drop(&mut self) {
        if self.0 {
            // SAFETY: as above; re-enables only what `new` disabled.
            unsafe { ffi::PyGC_Enable() };
        }
    }
}

/// Lists longer than this are appended to rather than allocated whole.
const PREALLOCATE_MAX: usize = 1 << 20;

enum Open {
    /// A list being filled in place (`PyList_SetItem`), and the next index.
    List(Py<PyAny>, isize),
    /// A list too long to allocate up front (a JS length is not a promise
    /// of memory: `new Array(2 ** 32 - 1)` is tiny in V8), appended to.
    Grow(Py<PyAny>),
    /// A dict, with the key of the value that comes next.
    Dict(Py<PyAny>, Option<Py<PyAny>>),
    Set(Py<PyAny>),
}

/// Builds one Python object from core's walk.
///
/// Outside [`Sink::enter`] the GIL is not held (the call runs with it
/// released): core then emits only a root scalar, kept as a `Value` and
/// made into a Python object by [`PySink::finish`]. Inside `enter` the GIL
/// is taken once for the whole walk and objects are built directly.
pub(crate) struct PySink {
    attached: bool,
    pending: Option<pr::Value>,
    done: Option<Py<PyAny>>,
    stack: Vec<Open>,
    /// Key strings by `Key::id`: one Python `str` per distinct key.
    keys: Vec<Py<PyAny>>,
    /// Byte buffers come as shared `memoryview`s (`share_buffers=True`).
    share_bytes: bool,
    error: Option<PyErr>,
}

// SAFETY: a `PySink` is made, used and finished on one thread, within one
// call; it crosses `Python::detach` only to be used on that same thread,
// and it touches Python objects only with the GIL held (`attached`).
unsafe impl Send for PySink {}

impl PySink {
    /// A sink for a call made with the GIL released.
    pub(crate) fn detached() -> PySink {
        PySink {
            attached: false,
            pending: None,
            done: None,
            stack: Vec::new(),
            keys: Vec::new(),
            share_bytes: false,
            error: None,
        }
    }

    /// Byte buffers as writable `memoryview`s of the sandbox's memory
    /// instead of `bytes` copies.
    pub(crate) fn sharing_bytes(mut self, share: bool) -> PySink {
        self.share_bytes = share;
        self
    }

    /// A sink used with the GIL held (host function arguments, kept values).
    pub(crate) fn attached(_py: Python<'_>) -> PySink {
        PySink { attached: true, ..PySink::detached() }
    }

    /// The Python error that stopped the walk, if one did.
    pub(crate) fn take_error(&mut self) -> Option<PyErr> {
        self.error.take()
    }

    /// The object built (with the GIL held again).
    pub(crate) fn finish(mut self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        if let Some(v) = self.pending.take() {
            self.attached = true;
            if v.emit(&mut self).is_err() {
                return Err(self.error.take().unwrap_or_else(|| conversion(py, "conversion failed".into())));
            }
        }
        match self.done.take() {
            Some(o) => Ok(o),
            None => undefined(py),
        }
    }

    fn fail<T>(&mut self, e: PyErr) -> Result<T, Halt> {
        self.error = Some(e);
        Err(Halt)
    }

    /// Keeps a root scalar until the GIL is back (see the type's docs).
    fn keep(&mut self, v: pr::Value) -> Result<(), Halt> {
        if self.stack.is_empty() && self.pending.is_none() && self.done.is_none() {
            self.pending = Some(v);
            Ok(())
        } else {
            Err(Halt)
        }
    }

    /// Places a new object (an owned reference, or null with a Python
    /// error set) in the container being filled, or as the result.
    fn put(&mut self, obj: *mut ffi::PyObject) -> Result<(), Halt> {
        // SAFETY: only called while attached (the GIL is held).
        let py = unsafe { Python::assume_attached() };
        if obj.is_null() {
            let e = PyErr::fetch(py);
            return self.fail(e);
        }
        // SAFETY: `obj` is a new, owned reference.
        let obj = unsafe { Bound::from_owned_ptr(py, obj).unbind() };
        self.place(py, obj)
    }

    fn place(&mut self, py: Python<'_>, obj: Py<PyAny>) -> Result<(), Halt> {
        let r = match self.stack.last_mut() {
            None => {
                self.done = Some(obj);
                0
            }
            Some(Open::List(list, i)) => {
                // SAFETY: the list was made with exactly the walk's length and
                // `i` is below it; `PyList_SetItem` steals the reference.
                let r = unsafe { ffi::PyList_SetItem(list.as_ptr(), *i, obj.into_ptr()) };
                *i += 1;
                r
            }
            Some(Open::Dict(dict, key)) => match key.take() {
                // SAFETY: GIL held; `PyDict_SetItem` does not steal.
                Some(k) => unsafe { ffi::PyDict_SetItem(dict.as_ptr(), k.as_ptr(), obj.as_ptr()) },
                // A Map's key, waiting for its value.
                None => {
                    *key = Some(obj);
                    0
                }
            },
            Some(Open::Set(set)) => {
                // SAFETY: GIL held; `PySet_Add` does not steal.
                unsafe { ffi::PySet_Add(set.as_ptr(), obj.as_ptr()) }
            }
            Some(Open::Grow(list)) => {
                // SAFETY: GIL held; `PyList_Append` does not steal.
                unsafe { ffi::PyList_Append(list.as_ptr(), obj.as_ptr()) }
            }
        };
        if r != 0 {
            let e = PyErr::fetch(py);
            let e = if matches!(self.stack.last(), Some(Open::Dict(..)) | Some(Open::Set(_))) {
                conversion(py, format!("a Map key or Set element cannot be used in Python: {e}"))
            } else {
                e
            };
            return self.fail(e);
        }
        Ok(())
    }

    fn open(&mut self, o: Open) -> Result<(), Halt> {
        self.stack.push(o);
        Ok(())
    }

    fn py_str(s: JsStr) -> *mut ffi::PyObject {
        // SAFETY: the GIL is held (callers are attached); the data is valid
        // for the call.
        unsafe {
            match s {
                JsStr::Latin1(b) => ffi::PyUnicode_DecodeLatin1(b.as_ptr().cast(), b.len() as isize, std::ptr::null()),
                JsStr::Utf16(u) => {
                    // Explicit byte order: with 0 a leading U+FEFF would be
                    // taken for a byte-order mark and dropped. Lone
                    // surrogates become U+FFFD, as in every binding.
                    let mut order: std::os::raw::c_int = if cfg!(target_endian = "little") { -1 } else { 1 };
                    ffi::PyUnicode_DecodeUTF16(
                        u.as_ptr().cast(),
                        (u.len() * 2) as isize,
                        c"replace".as_ptr(),
                        &mut order,
                    )
                }
            }
        }
    }
}

/// `datetime.datetime.fromtimestamp` and `datetime.timezone.utc`, looked up once.
static DATETIME: PyOnceLock<(Py<PyAny>, Py<PyAny>)> = PyOnceLock::new();

fn datetime(py: Python<'_>, ms: f64) -> PyResult<Py<PyAny>> {
    let (from_ts, utc) = DATETIME.get_or_try_init(py, || -> PyResult<_> {
        let dt = py.import("datetime")?;
        Ok((
            dt.getattr("datetime")?.getattr("fromtimestamp")?.unbind(),
            dt.getattr("timezone")?.getattr("utc")?.unbind(),
        ))
    })?;
    Ok(from_ts.bind(py).call1((ms / 1000.0, utc.bind(py)))?.unbind())
}

pub(crate) fn handle_to_py(py: Python<'_>, h: pr::JsHandle) -> PyResult<Py<PyAny>> {
    let obj = match h.kind() {
        pr::HandleKind::Function => Py::new(py, JSFunction(h))?.into_any(),
        pr::HandleKind::Promise => Py::new(py, JSPromise(h))?.into_any(),
        pr::HandleKind::Symbol => Py::new(py, JSSymbol(h))?.into_any(),
        pr::HandleKind::Array => Py::new(py, JSArray(h))?.into_any(),
        pr::HandleKind::Object => Py::new(py, JSObject(h))?.into_any(),
    };
    Ok(obj)
}

impl Sink for PySink {
    fn undefined(&mut self) -> Result<(), Halt> {
        if !self.attached {
            return self.keep(pr::Value::Undefined);
        }
        // SAFETY: attached.
        let py = unsafe { Python::assume_attached() };
        match undefined(py) {
            Ok(u) => self.place(py, u),
            Err(e) => self.fail(e),
        }
    }
    fn null(&mut self) -> Result<(), Halt> {
        if !self.attached {
            return self.keep(pr::Value::Null);
        }
        // SAFETY: attached.
        let py = unsafe { Python::assume_attached() };
        self.place(py, py.None())
    }
    fn bool(&mut self, b: bool) -> Result<(), Halt> {
        if !self.attached {
            return self.keep(pr::Value::Bool(b));
        }
        // SAFETY: attached.
        let py = unsafe { Python::assume_attached() };
        self.place(py, PyBool::new(py, b).to_owned().into_any().unbind())
    }
    fn integer(&mut self, i: i64) -> Result<(), Halt> {
        if !self.attached {
            return self.keep(pr::Value::Integer(i));
        }
        // SAFETY: attached.
        self.put(unsafe { ffi::PyLong_FromLongLong(i) })
    }
    fn number(&mut self, n: f64) -> Result<(), Halt> {
        if !self.attached {
            return self.keep(pr::Value::Number(n));
        }
        // SAFETY: attached.
        let py = unsafe { Python::assume_attached() };
        self.place(py, PyFloat::new(py, n).into_any().unbind())
    }
    fn bigint(&mut self, b: pr::BigInt) -> Result<(), Halt> {
        if !self.attached {
            return self.keep(pr::Value::BigInt(b));
        }
        // SAFETY: attached.
        let py = unsafe { Python::assume_attached() };
        match b.into_pyobject(py) {
            Ok(o) => self.place(py, o.into_any().unbind()),
            Err(e) => self.fail(e),
        }
    }
    fn string(&mut self, s: JsStr<'_>) -> Result<(), Halt> {
        if !self.attached {
            return self.keep(pr::Value::String(s.to_str().into_owned()));
        }
        self.put(Self::py_str(s))
    }
    fn date(&mut self, ms: f64) -> Result<(), Halt> {
        if !self.attached {
            return self.keep(pr::Value::Date(ms));
        }
        // SAFETY: attached.
        let py = unsafe { Python::assume_attached() };
        match datetime(py, ms) {
            Ok(d) => self.place(py, d),
            Err(e) => self.fail(e),
        }
    }
    fn bytes(&mut self, b: &[u8]) -> Result<(), Halt> {
        if !self.attached {
            return self.keep(pr::Value::Bytes(pr::transfer::fresh_copy(b)));
        }
        // SAFETY: attached; one copy, from V8's buffer into the new bytes
        // object (allocated uninitialised, then filled). CPython frees a
        // bytes object as soon as it is dropped, so the next one often
        // lands in memory still in the cache.
        self.put(unsafe {
            let out = ffi::PyBytes_FromStringAndSize(std::ptr::null(), b.len() as isize);
            if !out.is_null() {
                pr::transfer::copy_to_fresh(ffi::PyBytes_AsString(out).cast(), b, pr::transfer::HostFrees::Promptly);
            }
            out
        })
    }
    fn shares_bytes(&self) -> bool {
        self.share_bytes
    }
    fn shared_bytes(&mut self, b: pr::transfer::SharedBytes) -> Result<(), Halt> {
        if !self.attached {
            // SAFETY: the walk holds the isolate: no JS writes meanwhile.
            return self.keep(pr::Value::Bytes(pr::transfer::fresh_copy(unsafe { b.as_slice() })));
        }
        // SAFETY: attached.
        let py = unsafe { Python::assume_attached() };
        match crate::memory::memoryview(py, b) {
            Ok(v) => self.place(py, v),
            Err(e) => self.fail(e),
        }
    }
    fn error(&mut self, e: pr::ErrorValue) -> Result<(), Halt> {
        if !self.attached {
            return self.keep(pr::Value::Error(Box::new(e)));
        }
        // SAFETY: attached.
        let py = unsafe { Python::assume_attached() };
        let made = (|| -> PyResult<Py<PyAny>> {
            let inst = error_class(py, "JSError")?.call1((format!("{}: {}", e.name, e.message),))?;
            inst.setattr("name", &e.name)?;
            inst.setattr("message", &e.message)?;
            inst.setattr("stack", &e.stack)?;
            Ok(inst.unbind())
        })();
        match made {
            Ok(o) => self.place(py, o),
            Err(err) => self.fail(err),
        }
    }
    fn handle(&mut self, h: pr::JsHandle) -> Result<(), Halt> {
        if !self.attached {
            return self.keep(pr::Value::Handle(h));
        }
        // SAFETY: attached.
        let py = unsafe { Python::assume_attached() };
        match handle_to_py(py, h) {
            Ok(o) => self.place(py, o),
            Err(e) => self.fail(e),
        }
    }
    fn begin_array(&mut self, len: usize) -> Result<(), Halt> {
        // SAFETY: containers only come inside `enter` (attached).
        let py = unsafe { Python::assume_attached() };
        let grow = len > PREALLOCATE_MAX;
        let list = unsafe { ffi::PyList_New(if grow { 0 } else { len as isize }) };
        if list.is_null() {
            let e = PyErr::fetch(py);
            return self.fail(e);
        }
        // SAFETY: a new reference.
        let list = unsafe { Bound::from_owned_ptr(py, list).unbind() };
        self.open(if grow { Open::Grow(list) } else { Open::List(list, 0) })
    }
    fn begin_object(&mut self, _len: usize) -> Result<(), Halt> {
        // SAFETY: attached (inside `enter`).
        let py = unsafe { Python::assume_attached() };
        let d = unsafe { ffi::PyDict_New() };
        if d.is_null() {
            let e = PyErr::fetch(py);
            return self.fail(e);
        }
        // SAFETY: a new reference.
        self.open(Open::Dict(unsafe { Bound::from_owned_ptr(py, d).unbind() }, None))
    }
    fn key(&mut self, key: Key<'_>) -> Result<(), Halt> {
        // SAFETY: attached (inside `enter`).
        let py = unsafe { Python::assume_attached() };
        let k = match self.keys.get(key.id as usize) {
            Some(k) => k.clone_ref(py),
            None => {
                let s = Self::py_str(key.text);
                if s.is_null() {
                    let e = PyErr::fetch(py);
                    return self.fail(e);
                }
                // SAFETY: a new reference.
                let s: Py<PyAny> = unsafe { Bound::from_owned_ptr(py, s).unbind() };
                if key.id as usize == self.keys.len() {
                    self.keys.push(s.clone_ref(py));
                }
                s
            }
        };
        match self.stack.last_mut() {
            Some(Open::Dict(_, slot)) => {
                *slot = Some(k);
                Ok(())
            }
            _ => Err(Halt),
        }
    }
    fn begin_map(&mut self, len: usize) -> Result<(), Halt> {
        self.begin_object(len)
    }
    fn begin_set(&mut self, _len: usize) -> Result<(), Halt> {
        // SAFETY: attached (inside `enter`).
        let py = unsafe { Python::assume_attached() };
        let s = unsafe { ffi::PySet_New(std::ptr::null_mut()) };
        if s.is_null() {
            let e = PyErr::fetch(py);
            return self.fail(e);
        }
        // SAFETY: a new reference.
        self.open(Open::Set(unsafe { Bound::from_owned_ptr(py, s).unbind() }))
    }
    fn end(&mut self) -> Result<(), Halt> {
        // SAFETY: attached (inside `enter`).
        let py = unsafe { Python::assume_attached() };
        let obj = match self.stack.pop() {
            Some(Open::List(o, _) | Open::Grow(o) | Open::Dict(o, _) | Open::Set(o)) => o,
            None => return Err(Halt),
        };
        self.place(py, obj)
    }
    fn one_pass(&self) -> bool {
        // Dicts and sets are not presized, and what `restart` drops is
        // only objects this sink made.
        true
    }
    fn restart(&mut self) {
        // Inside `enter` (the GIL is held): the partial objects are freed.
        self.stack.clear();
        self.done = None;
        // The walk gives key ids anew.
        self.keys.clear();
    }
    fn enter(&mut self, walk: &mut dyn FnMut(&mut dyn Sink)) {
        let was = self.attached;
        Python::attach(|_py| {
            let _gc = GcPaused::new();
            self.attached = true;
            walk(self);
            self.attached = was;
        });
    }
}

/// A kept `Value` as a Python object (results of awaits, handle reads).
pub(crate) fn value_to_py(py: Python<'_>, v: pr::Value) -> PyResult<Py<PyAny>> {
    let mut sink = PySink::attached(py);
    if v.emit(&mut sink).is_err() {
        return Err(sink.take_error().unwrap_or_else(|| conversion(py, "conversion failed".into())));
    }
    sink.finish(py)
}
