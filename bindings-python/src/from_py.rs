//! Python → JS: a `polyracer::transfer::Source` that core's walk reads
//! Python objects through while it creates the JS values (no intermediate
//! tree).

use polyracer as pr;
use polyracer::transfer::{Arg, Halt, HostRef, Read, Source};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyDateTime, PyDict, PyFrozenSet, PyMemoryView, PySet, PyString, PyTuple};

use crate::types::{conversion, undefined, JSArray, JSFunction, JSObject, JSPromise, JSSymbol};

/// Reads Python objects for one call. Refs are borrowed `PyObject*`s: the
/// caller's objects (and the containers holding their children) outlive
/// the call, and no Python code that could mutate them runs during the
/// walk. Objects made while reading (a set's items, a memoryview's bytes)
/// are kept in `keep` until the source is dropped.
pub(crate) struct PySource {
    keep: Vec<Py<PyAny>>,
    /// Text of a `str` that is not valid UTF-8 (lone surrogates), made
    /// lossy; borrowed by the `Read` that returns it.
    lossy: String,
    error: Option<PyErr>,
}

// SAFETY: used on one thread within one call; it crosses
// `Python::detach` only to be used by core on that same thread, under
// `enter`, which takes the GIL.
unsafe impl Send for PySource {}

impl PySource {
    pub(crate) fn new() -> PySource {
        PySource { keep: Vec::new(), lossy: String::new(), error: None }
    }

    /// The Python error that stopped the walk, if one did.
    pub(crate) fn take_error(&mut self) -> Option<PyErr> {
        self.error.take()
    }

    fn fail<T>(&mut self, e: PyErr) -> Result<T, Halt> {
        self.error = Some(e);
        Err(Halt)
    }

    /// An argument: scalars are read now (the GIL is held), so a call
    /// with only scalar arguments needs no GIL round trip inside; anything
    /// else is read during the call.
    pub(crate) fn arg(&mut self, v: &Bound<'_, PyAny>) -> PyResult<Arg> {
        let py = v.py();
        if is_container(v) {
            return Ok(Arg::Host(HostRef(v.as_ptr() as usize)));
        }
        match pr::transfer::collect(self, HostRef(v.as_ptr() as usize)) {
            Ok(value) => Ok(Arg::Value(value)),
            Err(e) => Err(self.take_error().unwrap_or_else(|| conversion(py, e.to_string()))),
        }
    }

    pub(crate) fn args(&mut self, args: &Bound<'_, PyTuple>) -> PyResult<Vec<Arg>> {
        args.iter().map(|a| self.arg(&a)).collect()
    }
}

/// Whether reading `v` is worth doing inside the call (a container, or a
/// string or bytes long enough that copying it twice would show).
fn is_container(v: &Bound<'_, PyAny>) -> bool {
    let t = v.get_type_ptr();
    // Exact types first: pointer comparisons.
    if t == std::ptr::addr_of_mut!(ffi::PyList_Type)
        || t == std::ptr::addr_of_mut!(ffi::PyDict_Type)
        || t == std::ptr::addr_of_mut!(ffi::PyTuple_Type)
    {
        return true;
    }
    if let Ok(s) = v.cast::<PyString>() {
        return s.len().is_ok_and(|n| n > pr::transfer::ENTER_STRING_LEN);
    }
    v.is_instance_of::<pyo3::types::PyList>()
        || v.is_instance_of::<PyDict>()
        || v.is_instance_of::<PyTuple>()
        || v.is_instance_of::<PySet>()
        || v.is_instance_of::<PyFrozenSet>()
        || v.is_instance_of::<PyBytes>()
        || v.is_instance_of::<PyByteArray>()
        || v.is_instance_of::<PyMemoryView>()
}

/// A `Value` read from a Python object (what must be kept: an async
/// completion, a handle key).
pub(crate) fn value_from_py(v: &Bound<'_, PyAny>) -> PyResult<pr::Value> {
    let mut src = PySource::new();
    pr::transfer::collect(&mut src, HostRef(v.as_ptr() as usize))
        .map_err(|e| src.take_error().unwrap_or_else(|| conversion(v.py(), e.to_string())))
}

/// `Value`s of a call's arguments (for calls that keep them: async calls).
pub(crate) fn values_from_py(args: &Bound<'_, PyTuple>) -> PyResult<Vec<pr::Value>> {
    args.iter().map(|a| value_from_py(&a)).collect()
}

impl Source for PySource {
    fn read(&mut self, v: HostRef) -> Result<Read<'_>, Halt> {
        // SAFETY: reads happen under `enter`, with the GIL held.
        let py = unsafe { Python::assume_attached() };
        // SAFETY: a borrowed reference the caller keeps alive (type docs).
        let v = unsafe { Bound::from_borrowed_ptr(py, v.0 as *mut ffi::PyObject) };
        let t = v.get_type_ptr();
        let p = v.as_ptr();
        // Exact types first: one pointer comparison each.
        // SAFETY: comparing type pointers and reading objects of those types.
        unsafe {
            if t == std::ptr::addr_of_mut!(ffi::PyUnicode_Type) {
                return self.read_str(p);
            }
            if t == std::ptr::addr_of_mut!(ffi::PyFloat_Type) {
                return Ok(Read::Number(ffi::PyFloat_AsDouble(p)));
            }
            if t == std::ptr::addr_of_mut!(ffi::PyLong_Type) {
                return self.read_int(&v);
            }
            if t == std::ptr::addr_of_mut!(ffi::PyDict_Type) {
                return Ok(dict_kind(p));
            }
            if t == std::ptr::addr_of_mut!(ffi::PyList_Type) {
                return Ok(Read::Array(ffi::PyList_Size(p) as usize));
            }
            if t == std::ptr::addr_of_mut!(ffi::PyBool_Type) {
                return Ok(Read::Bool(p == ffi::Py_True()));
            }
        }
        if v.is_none() {
            return Ok(Read::Null);
        }
        match undefined(py) {
            Ok(u) if v.is(u.bind(py)) => return Ok(Read::Undefined),
            Ok(_) => {}
            Err(e) => return self.fail(e),
        }
        // SAFETY: the `*_Check`s read the type's flags.
        unsafe {
            if ffi::PyBool_Check(p) != 0 {
                return Ok(Read::Bool(p == ffi::Py_True()));
            }
            if ffi::PyLong_Check(p) != 0 {
                return self.read_int(&v);
            }
            if ffi::PyFloat_Check(p) != 0 {
                return Ok(Read::Number(ffi::PyFloat_AsDouble(p)));
            }
            if ffi::PyUnicode_Check(p) != 0 {
                return self.read_str(p);
            }
            if ffi::PyBytes_Check(p) != 0 {
                let data = ffi::PyBytes_AsString(p) as *const u8;
                let n = ffi::PyBytes_Size(p) as usize;
                return Ok(Read::Bytes(std::slice::from_raw_parts(data, n)));
            }
            if ffi::PyByteArray_Check(p) != 0 {
                let data = ffi::PyByteArray_AsString(p) as *const u8;
                let n = ffi::PyByteArray_Size(p) as usize;
                return Ok(Read::Bytes(if n == 0 { &[] } else { std::slice::from_raw_parts(data, n) }));
            }
        }
        if v.cast::<PyMemoryView>().is_ok() {
            // The stable ABI before 3.11 has no buffer protocol: a copy.
            return match v.call_method0("tobytes") {
                Ok(b) => {
                    let b = b.unbind();
                    let ptr = b.as_ptr();
                    self.keep.push(b);
                    // SAFETY: `tobytes` returns bytes, kept alive in `keep`.
                    unsafe {
                        let data = ffi::PyBytes_AsString(ptr) as *const u8;
                        Ok(Read::Bytes(std::slice::from_raw_parts(data, ffi::PyBytes_Size(ptr) as usize)))
                    }
                }
                Err(e) => self.fail(e),
            };
        }
        if v.cast::<PyDateTime>().is_ok() {
            return match datetime_ms(&v) {
                Ok(ms) => Ok(Read::Date(ms)),
                Err(e) => self.fail(e),
            };
        }
        if let Ok(h) = v.cast::<JSFunction>() {
            return Ok(Read::Handle(h.get().0.clone()));
        }
        if let Ok(h) = v.cast::<JSObject>() {
            return Ok(Read::Handle(h.get().0.clone()));
        }
        if let Ok(h) = v.cast::<JSArray>() {
            return Ok(Read::Handle(h.get().0.clone()));
        }
        if let Ok(h) = v.cast::<JSPromise>() {
            return Ok(Read::Handle(h.get().0.clone()));
        }
        if let Ok(h) = v.cast::<JSSymbol>() {
            return Ok(Read::Handle(h.get().0.clone()));
        }
        if v.is_instance_of::<PyDict>() {
            return Ok(dict_kind(p));
        }
        if let Ok(l) = v.cast::<pyo3::types::PyList>() {
            return Ok(Read::Array(l.len()));
        }
        if let Ok(t) = v.cast::<PyTuple>() {
            return Ok(Read::Array(t.len()));
        }
        if v.is_instance_of::<PySet>() || v.is_instance_of::<PyFrozenSet>() {
            return Ok(Read::Set(v.len().unwrap_or(0)));
        }
        let name = v.get_type().name().map(|n| n.to_string()).unwrap_or_default();
        Ok(Read::Unsupported(format!("cannot convert a Python {name} to JavaScript")))
    }

    fn items(&mut self, v: HostRef, out: &mut Vec<HostRef>) -> Result<(), Halt> {
        // SAFETY: under `enter` (GIL held); `v` was just read as an array or set.
        let py = unsafe { Python::assume_attached() };
        let p = v.0 as *mut ffi::PyObject;
        unsafe {
            if ffi::PyList_Check(p) != 0 {
                for i in 0..ffi::PyList_Size(p) {
                    out.push(HostRef(ffi::PyList_GetItem(p, i) as usize));
                }
                return Ok(());
            }
            if ffi::PyTuple_Check(p) != 0 {
                for i in 0..ffi::PyTuple_Size(p) {
                    out.push(HostRef(ffi::PyTuple_GetItem(p, i) as usize));
                }
                return Ok(());
            }
        }
        // A set: iterating makes new references, kept for the call.
        let set = unsafe { Bound::from_borrowed_ptr(py, p) };
        let iter = match set.try_iter() {
            Ok(i) => i,
            Err(e) => return self.fail(e),
        };
        for item in iter {
            match item {
                Ok(x) => {
                    out.push(HostRef(x.as_ptr() as usize));
                    self.keep.push(x.unbind());
                }
                Err(e) => return self.fail(e),
            }
        }
        Ok(())
    }

    fn entries(&mut self, v: HostRef, out: &mut Vec<(HostRef, HostRef)>) -> Result<(), Halt> {
        let p = v.0 as *mut ffi::PyObject;
        let mut pos: ffi::Py_ssize_t = 0;
        let mut k: *mut ffi::PyObject = std::ptr::null_mut();
        let mut x: *mut ffi::PyObject = std::ptr::null_mut();
        // SAFETY: under `enter` (GIL held); `v` is a dict; `PyDict_Next`
        // returns borrowed references the dict keeps alive.
        while unsafe { ffi::PyDict_Next(p, &mut pos, &mut k, &mut x) } != 0 {
            out.push((HostRef(k as usize), HostRef(x as usize)));
        }
        Ok(())
    }

    fn enter(&mut self, walk: &mut dyn FnMut(&mut dyn Source)) {
        Python::attach(|_py| walk(self));
    }
}

impl PySource {
    /// # Safety
    /// `p` is a `str`; the GIL is held.
    unsafe fn read_str(&mut self, p: *mut ffi::PyObject) -> Result<Read<'_>, Halt> {
        let mut n: ffi::Py_ssize_t = 0;
        // SAFETY: per the contract; the UTF-8 form is cached in the object,
        // which outlives the read.
        let data = unsafe { ffi::PyUnicode_AsUTF8AndSize(p, &mut n) };
        if !data.is_null() {
            // SAFETY: CPython returns valid UTF-8 of length `n`.
            return Ok(Read::String(unsafe {
                std::str::from_utf8_unchecked(std::slice::from_raw_parts(data as *const u8, n as usize))
            }));
        }
        // Lone surrogates (possible in a Python str) become U+FFFD, as
        // from JS.
        // SAFETY: GIL held.
        let py = unsafe { Python::assume_attached() };
        drop(PyErr::take(py));
        let s = unsafe { Bound::from_borrowed_ptr(py, p) };
        self.lossy = s.cast::<PyString>().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        Ok(Read::String(&self.lossy))
    }

    fn read_int(&mut self, v: &Bound<'_, PyAny>) -> Result<Read<'_>, Halt> {
        if let Ok(i) = v.extract::<i64>() {
            return Ok(Read::Integer(i));
        }
        match v.extract::<pr::BigInt>() {
            Ok(b) => Ok(Read::BigInt(Box::new(b))),
            Err(e) => self.fail(e),
        }
    }
}

/// A dict with only `str` keys is a JS object; any other key makes it a
/// `Map`, which keeps the keys as they are.
fn dict_kind(p: *mut ffi::PyObject) -> Read<'static> {
    let mut pos: ffi::Py_ssize_t = 0;
    let mut k: *mut ffi::PyObject = std::ptr::null_mut();
    let mut x: *mut ffi::PyObject = std::ptr::null_mut();
    let mut n = 0;
    let mut plain = true;
    // SAFETY: GIL held (reads are under `enter`); borrowed references.
    while unsafe { ffi::PyDict_Next(p, &mut pos, &mut k, &mut x) } != 0 {
        n += 1;
        if plain && unsafe { ffi::PyUnicode_Check(k) } == 0 {
            plain = false;
        }
    }
    if plain {
        Read::Object(n)
    } else {
        Read::Map(n)
    }
}

fn datetime_ms(v: &Bound<'_, PyAny>) -> PyResult<f64> {
    let py = v.py();
    let aware = if v.getattr("tzinfo")?.is_none() {
        // Naive datetimes are taken as UTC.
        let kw = PyDict::new(py);
        kw.set_item("tzinfo", py.import("datetime")?.getattr("timezone")?.getattr("utc")?)?;
        v.call_method("replace", (), Some(&kw))?
    } else {
        v.clone()
    };
    let ts: f64 = aware.call_method0("timestamp")?.extract()?;
    Ok((ts * 1000.0).round())
}
