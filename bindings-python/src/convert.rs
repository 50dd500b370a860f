//! Python ⇄ `polyracer::Value` conversion.

use std::collections::HashSet;

use num_bigint::BigInt;
use polyracer as pr;
use pyo3::prelude::*;
use pyo3::types::{
    PyBool, PyByteArray, PyBytes, PyDateTime, PyDict, PyFloat, PyFrozenSet, PyInt, PyList, PyMemoryView, PySet,
    PyString, PyTuple,
};

use crate::types::{conversion, error_class, undefined, JSArray, JSFunction, JSObject, JSPromise, JSSymbol};

/// JS → Python.
/// Pauses Python's cyclic GC while a container result is built: every new
/// list and dict counts towards a collection, and for a 1 MB result the
/// collections it triggered (which traverse the half-built tree) were ~15%
/// of the conversion (perf). The previous state is restored on drop.
struct GcPaused(bool);

impl GcPaused {
    fn new() -> GcPaused {
        // SAFETY: the GIL is held (the caller has `Python`); stable ABI ≥ 3.10.
        GcPaused(unsafe { pyo3::ffi::PyGC_Disable() } != 0)
    }
}

impl Drop for GcPaused {
    fn drop(&mut self) {
        if self.0 {
            // SAFETY: as above; re-enables only what `new` disabled.
            unsafe { pyo3::ffi::PyGC_Enable() };
        }
    }
}

pub(crate) fn to_py(py: Python<'_>, v: pr::Value) -> PyResult<Py<PyAny>> {
    match v {
        pr::Value::Array(_) | pr::Value::Object(_) | pr::Value::Map(_) | pr::Value::Set(_) => {
            let _gc = GcPaused::new();
            value_to_py(py, v)
        }
        other => value_to_py(py, other),
    }
}

fn value_to_py(py: Python<'_>, v: pr::Value) -> PyResult<Py<PyAny>> {
    Ok(match v {
        pr::Value::Undefined => undefined(py)?,
        pr::Value::Null => py.None(),
        pr::Value::Bool(b) => PyBool::new(py, b).to_owned().into_any().unbind(),
        pr::Value::Integer(i) => i.into_pyobject(py)?.into_any().unbind(),
        pr::Value::Number(n) => PyFloat::new(py, n).into_any().unbind(),
        pr::Value::BigInt(b) => b.into_pyobject(py)?.into_any().unbind(),
        pr::Value::String(s) => PyString::new(py, &s).into_any().unbind(),
        pr::Value::Date(ms) => {
            let dt = py.import("datetime")?;
            let utc = dt.getattr("timezone")?.getattr("utc")?;
            if !ms.is_finite() {
                return Err(error_class(py, "ConversionError")?
                    .call1(("Invalid Date has no Python datetime",))
                    .map(PyErr::from_value)?);
            }
            dt.getattr("datetime")?.call_method1("fromtimestamp", (ms / 1000.0, utc))?.unbind()
        }
        pr::Value::Bytes(b) => PyBytes::new(py, &b).into_any().unbind(),
        pr::Value::Array(items) => {
            // Converted first, then one allocation of the right size.
            let items = items.into_iter().map(|item| value_to_py(py, item)).collect::<PyResult<Vec<_>>>()?;
            PyList::new(py, items)?.into_any().unbind()
        }
        pr::Value::Object(props) => {
            let d = PyDict::new(py);
            for (k, v) in props {
                d.set_item(PyString::new(py, &k), value_to_py(py, v)?)?;
            }
            d.into_any().unbind()
        }
        pr::Value::Map(entries) => {
            let d = PyDict::new(py);
            for (k, v) in entries {
                d.set_item(value_to_py(py, k)?, value_to_py(py, v)?)
                    .map_err(|e| conversion(py, format!("Map key: {e}")))?;
            }
            d.into_any().unbind()
        }
        pr::Value::Set(items) => {
            let s = PySet::empty(py)?;
            for item in items {
                s.add(value_to_py(py, item)?).map_err(|e| conversion(py, format!("Set element: {e}")))?;
            }
            s.into_any().unbind()
        }
        pr::Value::Error(e) => {
            let inst = error_class(py, "JSError")?.call1((format!("{}: {}", e.name, e.message),))?;
            inst.setattr("name", &e.name)?;
            inst.setattr("message", &e.message)?;
            inst.setattr("stack", &e.stack)?;
            inst.unbind()
        }
        pr::Value::Handle(h) => handle_to_py(py, h)?,
    })
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

/// Python → JS, with cycle and depth checks.
pub(crate) fn from_py(v: &Bound<'_, PyAny>) -> PyResult<pr::Value> {
    let mut seen = HashSet::new();
    from_py_at(v, 0, &mut seen)
}

pub(crate) fn from_py_at(v: &Bound<'_, PyAny>, depth: usize, seen: &mut HashSet<usize>) -> PyResult<pr::Value> {
    let py = v.py();
    if v.is_none() {
        return Ok(pr::Value::Null);
    }
    if v.is(undefined(py)?.bind(py)) {
        return Ok(pr::Value::Undefined);
    }
    if let Ok(b) = v.cast::<PyBool>() {
        return Ok(pr::Value::Bool(b.is_true()));
    }
    if let Ok(i) = v.cast::<PyInt>() {
        if let Ok(small) = i.extract::<i64>() {
            return Ok(pr::Value::from(small));
        }
        let big: BigInt = i.extract()?;
        return Ok(pr::Value::BigInt(big));
    }
    if let Ok(f) = v.cast::<PyFloat>() {
        return Ok(pr::Value::Number(f.value()));
    }
    if let Ok(s) = v.cast::<PyString>() {
        // Lone surrogates (possible in Python str) become U+FFFD, as from JS.
        return Ok(pr::Value::String(s.to_string_lossy().into_owned()));
    }
    if let Ok(b) = v.cast::<PyBytes>() {
        return Ok(pr::Value::Bytes(b.as_bytes().to_vec()));
    }
    if let Ok(b) = v.cast::<PyByteArray>() {
        return Ok(pr::Value::Bytes(b.to_vec()));
    }
    if v.cast::<PyMemoryView>().is_ok() {
        let bytes = v.call_method0("tobytes")?;
        return Ok(pr::Value::Bytes(bytes.cast::<PyBytes>()?.as_bytes().to_vec()));
    }
    if v.cast::<PyDateTime>().is_ok() {
        let aware = if v.getattr("tzinfo")?.is_none() {
            // Naive datetimes are taken as UTC.
            let kw = PyDict::new(py);
            kw.set_item("tzinfo", py.import("datetime")?.getattr("timezone")?.getattr("utc")?)?;
            v.call_method("replace", (), Some(&kw))?
        } else {
            v.clone()
        };
        let ts: f64 = aware.call_method0("timestamp")?.extract()?;
        return Ok(pr::Value::Date((ts * 1000.0).round()));
    }
    if let Ok(h) = v.cast::<JSFunction>() {
        return Ok(pr::Value::Handle(h.get().0.clone()));
    }
    if let Ok(h) = v.cast::<JSObject>() {
        return Ok(pr::Value::Handle(h.get().0.clone()));
    }
    if let Ok(h) = v.cast::<JSArray>() {
        return Ok(pr::Value::Handle(h.get().0.clone()));
    }
    if let Ok(h) = v.cast::<JSPromise>() {
        return Ok(pr::Value::Handle(h.get().0.clone()));
    }
    if let Ok(h) = v.cast::<JSSymbol>() {
        return Ok(pr::Value::Handle(h.get().0.clone()));
    }
    // Containers: depth and cycle checks.
    if depth >= pr::MAX_DEPTH {
        return Err(conversion(py, format!("nesting deeper than {} levels", pr::MAX_DEPTH)));
    }
    let id = v.as_ptr() as usize;
    let container = v.cast::<PyList>().is_ok()
        || v.cast::<PyTuple>().is_ok()
        || v.cast::<PyDict>().is_ok()
        || v.cast::<PySet>().is_ok()
        || v.cast::<PyFrozenSet>().is_ok();
    if container && !seen.insert(id) {
        return Err(conversion(py, "cyclic reference".into()));
    }
    let out = container_from_py(v, depth, seen);
    seen.remove(&id);
    out
}

pub(crate) fn container_from_py(v: &Bound<'_, PyAny>, depth: usize, seen: &mut HashSet<usize>) -> PyResult<pr::Value> {
    let py = v.py();
    if let Ok(l) = v.cast::<PyList>() {
        return l.iter().map(|x| from_py_at(&x, depth + 1, seen)).collect::<PyResult<_>>().map(pr::Value::Array);
    }
    if let Ok(t) = v.cast::<PyTuple>() {
        return t.iter().map(|x| from_py_at(&x, depth + 1, seen)).collect::<PyResult<_>>().map(pr::Value::Array);
    }
    if let Ok(d) = v.cast::<PyDict>() {
        if d.keys().iter().all(|k| k.cast::<PyString>().is_ok()) {
            let mut props = Vec::with_capacity(d.len());
            for (k, x) in d.iter() {
                props.push((k.cast::<PyString>()?.to_string_lossy().into_owned(), from_py_at(&x, depth + 1, seen)?));
            }
            return Ok(pr::Value::Object(props));
        }
        // Non-string keys: a Map keeps them as they are.
        let mut entries = Vec::with_capacity(d.len());
        for (k, x) in d.iter() {
            entries.push((from_py_at(&k, depth + 1, seen)?, from_py_at(&x, depth + 1, seen)?));
        }
        return Ok(pr::Value::Map(entries));
    }
    if v.cast::<PySet>().is_ok() || v.cast::<PyFrozenSet>().is_ok() {
        let mut items = Vec::new();
        for x in v.try_iter()? {
            items.push(from_py_at(&x?, depth + 1, seen)?);
        }
        return Ok(pr::Value::Set(items));
    }
    Err(conversion(
        py,
        format!(
            "cannot convert a Python {} to JavaScript",
            v.get_type().name().map(|n| n.to_string()).unwrap_or_default()
        ),
    ))
}

pub(crate) fn args_from_py(args: &Bound<'_, PyTuple>) -> PyResult<Vec<pr::Value>> {
    args.iter().map(|a| from_py(&a)).collect()
}

// ------------------------------------------------------------ host functions

pub(crate) fn key_value(key: &Bound<'_, PyAny>) -> PyResult<pr::Value> {
    from_py(key)
}
