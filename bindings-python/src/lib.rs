//! `polyracer._polyracer`: the native half of the Python package. Thin by
//! design: value conversion, error mapping and GIL handling; everything
//! else lives in the `polyracer` core crate.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use num_bigint::BigInt;
use polyracer as pr;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{
    PyBool, PyByteArray, PyBytes, PyDateTime, PyDict, PyFloat, PyFrozenSet, PyInt, PyList, PyMemoryView, PySet,
    PyString, PyTuple,
};

/// The original Python exception behind a JS error, returned as `__cause__`.
struct PyCause(Py<PyAny>);

static TYPES: PyOnceLock<Py<PyModule>> = PyOnceLock::new();
static UNDEFINED: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

fn types(py: Python<'_>) -> PyResult<&Bound<'_, PyModule>> {
    TYPES.get_or_try_init(py, || py.import("polyracer._types").map(Bound::unbind)).map(|m| m.bind(py))
}

fn undefined(py: Python<'_>) -> PyResult<Py<PyAny>> {
    UNDEFINED.get_or_try_init(py, || Ok(types(py)?.getattr("undefined")?.unbind())).map(|u| u.clone_ref(py))
}

fn error_class<'py>(py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
    types(py)?.getattr(name)
}

/// Maps a core error to the matching `polyracer` exception.
fn to_pyerr(py: Python<'_>, e: pr::Error) -> PyErr {
    match build_pyerr(py, e) {
        Ok(err) => err,
        Err(err) => err,
    }
}

fn build_pyerr(py: Python<'_>, e: pr::Error) -> PyResult<PyErr> {
    let (class, ex) = match &e {
        pr::Error::Parse(ex) => ("ParseError", Some(ex)),
        pr::Error::Js(ex) => ("JSError", Some(ex)),
        pr::Error::Timeout => ("TimeoutError", None),
        pr::Error::Terminated => ("TerminatedError", None),
        pr::Error::OutOfMemory => ("OutOfMemoryError", None),
        pr::Error::Conversion(_) => ("ConversionError", None),
        pr::Error::Disposed(_) => ("DisposedError", None),
        pr::Error::InvalidArgument(_) => ("InvalidArgumentError", None),
    };
    let cls = error_class(py, class)?;
    let text = match ex {
        Some(ex) => ex.to_string(),
        None => e.to_string(),
    };
    let inst = cls.call1((text,))?;
    if let Some(ex) = ex {
        inst.setattr("name", &ex.name)?;
        inst.setattr("message", &ex.message)?;
        inst.setattr("stack", &ex.stack)?;
        inst.setattr("filename", ex.filename.as_deref())?;
        inst.setattr("line", ex.line)?;
        inst.setattr("column", ex.column)?;
        inst.setattr("value", to_py(py, (*ex.value).clone()).unwrap_or_else(|_| py.None()))?;
        if let Some(cause) = ex.cause_as::<PyCause>() {
            inst.setattr("__cause__", cause.0.bind(py))?;
        }
    }
    Ok(PyErr::from_value(inst))
}

std::thread_local! {
    /// A signal exception (KeyboardInterrupt) raised while this thread waited.
    static PENDING_SIGNAL: std::cell::RefCell<Option<PyErr>> = const { std::cell::RefCell::new(None) };
}

/// Core's wait hook: runs Python's signal handlers (they act only on the
/// main thread) and stops the JS when one raised, e.g. on Ctrl-C.
fn check_signals() -> bool {
    Python::attach(|py| match py.check_signals() {
        Ok(()) => false,
        Err(e) => {
            PENDING_SIGNAL.with(|p| *p.borrow_mut() = Some(e));
            true
        }
    })
}

fn res<T>(py: Python<'_>, r: pr::Result<T>) -> PyResult<T> {
    // A signal raised while waiting wins: the call was terminated for it
    // (or finished just before the termination landed).
    if let Some(sig) = PENDING_SIGNAL.with(|p| p.borrow_mut().take()) {
        return Err(sig);
    }
    r.map_err(|e| to_pyerr(py, e))
}

/// Timeouts in seconds, validated by core (same range and message in every binding).
fn seconds(t: Option<f64>) -> PyResult<Option<Duration>> {
    Python::attach(|py| pr::limits::optional_timeout(t, pr::limits::TimeUnit::Seconds).map_err(|e| to_pyerr(py, e)))
}

/// A memory limit in bytes (an int, or a float with no fraction such as
/// `2e8`), validated and rounded by core.
fn memory_limit(py: Python<'_>, m: Option<&Bound<'_, PyAny>>) -> PyResult<Option<usize>> {
    let Some(m) = m.filter(|m| !m.is_none()) else { return Ok(None) };
    let checked = if let Ok(n) = m.extract::<i128>() {
        pr::limits::memory_limit(n)
    } else if m.is_instance_of::<pyo3::types::PyInt>() {
        // Beyond i128: out of range all the same.
        pr::limits::memory_limit(i128::MAX)
    } else if let Ok(f) = m.extract::<f64>() {
        pr::limits::memory_limit_f64(f)
    } else {
        Err(pr::Error::InvalidArgument(format!(
            "memory limit must be a whole number of bytes, not {}",
            m.get_type().name()?
        )))
    };
    checked.map(Some).map_err(|e| to_pyerr(py, e))
}

// ------------------------------------------------------------ conversion

/// JS → Python.
fn to_py(py: Python<'_>, v: pr::Value) -> PyResult<Py<PyAny>> {
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
            let list = PyList::empty(py);
            for item in items {
                list.append(to_py(py, item)?)?;
            }
            list.into_any().unbind()
        }
        pr::Value::Object(props) => {
            let d = PyDict::new(py);
            for (k, v) in props {
                d.set_item(k, to_py(py, v)?)?;
            }
            d.into_any().unbind()
        }
        pr::Value::Map(entries) => {
            let d = PyDict::new(py);
            for (k, v) in entries {
                d.set_item(to_py(py, k)?, to_py(py, v)?).map_err(|e| conversion(py, format!("Map key: {e}")))?;
            }
            d.into_any().unbind()
        }
        pr::Value::Set(items) => {
            let s = PySet::empty(py)?;
            for item in items {
                s.add(to_py(py, item)?).map_err(|e| conversion(py, format!("Set element: {e}")))?;
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

fn conversion(py: Python<'_>, msg: String) -> PyErr {
    match error_class(py, "ConversionError").and_then(|c| c.call1((msg,))) {
        Ok(inst) => PyErr::from_value(inst),
        Err(e) => e,
    }
}

fn handle_to_py(py: Python<'_>, h: pr::JsHandle) -> PyResult<Py<PyAny>> {
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
fn from_py(v: &Bound<'_, PyAny>) -> PyResult<pr::Value> {
    let mut seen = HashSet::new();
    from_py_at(v, 0, &mut seen)
}

fn from_py_at(v: &Bound<'_, PyAny>, depth: usize, seen: &mut HashSet<usize>) -> PyResult<pr::Value> {
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

fn container_from_py(v: &Bound<'_, PyAny>, depth: usize, seen: &mut HashSet<usize>) -> PyResult<pr::Value> {
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

fn args_from_py(args: &Bound<'_, PyTuple>) -> PyResult<Vec<pr::Value>> {
    args.iter().map(|a| from_py(&a)).collect()
}

// ------------------------------------------------------------ host functions

fn host_error(py: Python<'_>, e: PyErr) -> pr::HostError {
    let value = e.value(py);
    let name = value.get_type().name().map(|n| n.to_string()).unwrap_or_else(|_| "Error".into());
    let message = value.str().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let js_name = if name == "TypeError" { "TypeError".to_string() } else { name };
    pr::HostError::new(message).with_name(js_name).with_payload(Arc::new(PyCause(value.clone().into_any().unbind())))
}

fn call_python(f: &Py<PyAny>, args: Vec<pr::Value>) -> Result<pr::Value, pr::HostError> {
    Python::attach(|py| {
        let run = || -> PyResult<pr::Value> {
            let items = args.into_iter().map(|a| to_py(py, a)).collect::<PyResult<Vec<_>>>()?;
            let r = f.bind(py).call1(PyTuple::new(py, items)?)?;
            from_py(&r)
        };
        run().map_err(|e| host_error(py, e))
    })
}

/// Settles the promise of an async host function; handed to the Python side.
#[pyclass(module = "polyracer._polyracer")]
struct Completer(std::sync::Mutex<Option<pr::Completer>>);

#[pymethods]
impl Completer {
    fn resolve(&self, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let v = from_py(value);
        if let Some(c) = self.0.lock().unwrap_or_else(|e| e.into_inner()).take() {
            match v {
                Ok(v) => c.resolve(v),
                Err(e) => c.reject(host_error(value.py(), e)),
            }
        }
        Ok(())
    }

    fn reject(&self, error: &Bound<'_, PyAny>) -> PyResult<()> {
        let err = PyErr::from_value(error.clone());
        if let Some(c) = self.0.lock().unwrap_or_else(|e| e.into_inner()).take() {
            c.reject(host_error(error.py(), err));
        }
        Ok(())
    }
}

// ------------------------------------------------------------ Context

/// A JavaScript context: its own V8 isolate and heap. Calls run JS on the
/// calling thread (with the GIL released); threads take turns.
#[pyclass(module = "polyracer._polyracer", subclass, frozen)]
struct Context {
    inner: pr::Context,
}

fn eval_options(
    filename: Option<String>,
    timeout: Option<f64>,
    await_promise: bool,
    as_handle: bool,
) -> PyResult<pr::EvalOptions> {
    Ok(pr::EvalOptions { filename, timeout: seconds(timeout)?, as_handle, await_promise })
}

#[pymethods]
impl Context {
    #[new]
    #[pyo3(signature = (*, timeout=None, memory_limit=None, snapshot=None))]
    fn new(
        py: Python<'_>,
        timeout: Option<f64>,
        memory_limit: Option<&Bound<'_, PyAny>>,
        snapshot: Option<PyRef<'_, Snapshot>>,
    ) -> PyResult<Self> {
        let options = pr::ContextOptions {
            timeout: seconds(timeout)?,
            memory_limit: self::memory_limit(py, memory_limit)?,
            snapshot: snapshot.map(|s| s.0.clone()),
        };
        let inner = res(py, py.detach(|| pr::Context::new(options)))?;
        Ok(Context { inner })
    }

    /// `as_handle=True` returns objects and arrays as `JSObject`/`JSArray`
    /// handles instead of copies.
    #[pyo3(signature = (code, *, filename=None, timeout=None, await_promise=false, as_handle=false))]
    fn eval(
        &self,
        py: Python<'_>,
        code: &str,
        filename: Option<String>,
        timeout: Option<f64>,
        await_promise: bool,
        as_handle: bool,
    ) -> PyResult<Py<PyAny>> {
        let opts = eval_options(filename, timeout, await_promise, as_handle)?;
        let v = res(py, py.detach(|| self.inner.eval_with(code, opts)))?;
        to_py(py, v)
    }

    #[pyo3(signature = (target, *args, timeout=None, await_promise=false, as_handle=false))]
    fn call(
        &self,
        py: Python<'_>,
        target: &Bound<'_, PyAny>,
        args: &Bound<'_, PyTuple>,
        timeout: Option<f64>,
        await_promise: bool,
        as_handle: bool,
    ) -> PyResult<Py<PyAny>> {
        let argv = args_from_py(args)?;
        let opts = eval_options(None, timeout, await_promise, as_handle)?;
        let v = if let Ok(f) = target.cast::<JSFunction>() {
            let h = f.get().0.clone();
            res(py, py.detach(|| self.inner.call_with(&h, &argv, opts)))?
        } else if let Ok(s) = target.cast::<PyString>() {
            let s = s.to_string_lossy().into_owned();
            res(py, py.detach(|| self.inner.call_with(s.as_str(), &argv, opts)))?
        } else {
            return Err(PyTypeError::new_err("call() needs a JSFunction, a global path or a function expression"));
        };
        to_py(py, v)
    }

    fn set_global(&self, py: Python<'_>, name: &str, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let v = from_py(value)?;
        res(py, py.detach(|| self.inner.set_global(name, v)))
    }

    /// Exposes a Python callable to JS as `name` (dotted paths allowed).
    /// `is_async` callables get a `Completer` as their first argument and
    /// JS receives a promise.
    #[pyo3(signature = (name, function, *, is_async=false))]
    fn _expose(&self, py: Python<'_>, name: &str, function: Py<PyAny>, is_async: bool) -> PyResult<()> {
        if is_async {
            let r = self.inner.expose_async(name, move |_ctx, args, completer| {
                Python::attach(|py| {
                    let c = Py::new(py, Completer(std::sync::Mutex::new(Some(completer))));
                    let run = || -> PyResult<()> {
                        let mut items = vec![c?.into_any()];
                        for a in args {
                            items.push(to_py(py, a)?);
                        }
                        function.bind(py).call1(PyTuple::new(py, items)?)?;
                        Ok(())
                    };
                    if let Err(e) = run() {
                        e.print(py);
                    }
                })
            });
            return res(py, r);
        }
        res(py, self.inner.expose(name, move |_ctx, args| call_python(&function, args)))
    }

    fn terminate(&self) {
        self.inner.terminate();
    }

    fn heap_stats(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let s = res(py, py.detach(|| self.inner.heap_stats()))?;
        let d = PyDict::new(py);
        d.set_item("total_heap_size", s.total_heap_size)?;
        d.set_item("total_heap_size_executable", s.total_heap_size_executable)?;
        d.set_item("total_physical_size", s.total_physical_size)?;
        d.set_item("total_available_size", s.total_available_size)?;
        d.set_item("used_heap_size", s.used_heap_size)?;
        d.set_item("heap_size_limit", s.heap_size_limit)?;
        d.set_item("malloced_memory", s.malloced_memory)?;
        d.set_item("external_memory", s.external_memory)?;
        d.set_item("peak_malloced_memory", s.peak_malloced_memory)?;
        d.set_item("number_of_native_contexts", s.number_of_native_contexts)?;
        d.set_item("number_of_detached_contexts", s.number_of_detached_contexts)?;
        Ok(d.into_any().unbind())
    }

    fn low_memory_notification(&self, py: Python<'_>) -> PyResult<()> {
        res(py, py.detach(|| self.inner.low_memory_notification()))
    }

    fn write_heap_snapshot(&self, py: Python<'_>, path: std::path::PathBuf) -> PyResult<()> {
        res(py, py.detach(|| self.inner.write_heap_snapshot(&path)))
    }

    #[pyo3(signature = (source, *, filename=None, cached_data=None, produce_cache=false))]
    fn compile(
        &self,
        py: Python<'_>,
        source: &str,
        filename: Option<String>,
        cached_data: Option<Vec<u8>>,
        produce_cache: bool,
    ) -> PyResult<Script> {
        let s = res(
            py,
            py.detach(|| {
                self.inner.compile(
                    source,
                    pr::CompileOptions {
                        filename: filename.as_deref(),
                        cached_data: cached_data.as_deref(),
                        produce_cache,
                    },
                )
            }),
        )?;
        Ok(Script(s))
    }

    /// Evaluates an ES module; `resolver(specifier, referrer) -> source`.
    /// Returns the module namespace object.
    #[pyo3(signature = (source, *, filename, resolver, timeout=None))]
    fn eval_module(
        &self,
        py: Python<'_>,
        source: &str,
        filename: &str,
        resolver: Py<PyAny>,
        timeout: Option<f64>,
    ) -> PyResult<Py<PyAny>> {
        let resolve = move |spec: &str, referrer: &str| -> Result<String, pr::HostError> {
            Python::attach(|py| {
                let r = resolver.bind(py).call1((spec, referrer)).and_then(|s| s.extract::<String>());
                r.map_err(|e| host_error(py, e))
            })
        };
        let opts = pr::ModuleOptions { timeout: seconds(timeout)?, ..Default::default() };
        let m = res(py, py.detach(|| self.inner.eval_module_with(source, filename, resolve, opts)))?;
        handle_to_py(py, m.handle)
    }

    fn dispose(&self, py: Python<'_>) {
        py.detach(|| self.inner.dispose());
    }

    #[getter]
    fn disposed(&self) -> bool {
        self.inner.is_disposed()
    }
}

// ------------------------------------------------------------ Script, Snapshot

/// A compiled script; run it many times.
#[pyclass(module = "polyracer._polyracer", frozen)]
struct Script(pr::Script);

#[pymethods]
impl Script {
    #[pyo3(signature = (*, timeout=None))]
    fn run(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Py<PyAny>> {
        let opts = eval_options(None, timeout, false, false)?;
        let v = res(py, py.detach(|| self.0.run_with(opts)))?;
        to_py(py, v)
    }

    #[getter]
    fn cached_data<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        self.0.cached_data().map(|b| PyBytes::new(py, b))
    }

    #[getter]
    fn cache_rejected(&self) -> bool {
        self.0.cache_rejected()
    }

    fn dispose(&self) {
        self.0.dispose();
    }
}

/// A V8 startup snapshot.
#[pyclass(module = "polyracer._polyracer", frozen)]
struct Snapshot(pr::Snapshot);

#[pymethods]
impl Snapshot {
    #[staticmethod]
    fn create(py: Python<'_>, source: &str) -> PyResult<Self> {
        res(py, py.detach(|| pr::Snapshot::create(source))).map(Snapshot)
    }

    fn warmup(&self, py: Python<'_>, source: &str) -> PyResult<Self> {
        res(py, py.detach(|| self.0.warmup(source))).map(Snapshot)
    }

    fn dump<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.0.as_bytes())
    }

    #[staticmethod]
    fn load(py: Python<'_>, data: &[u8]) -> PyResult<Self> {
        res(py, pr::Snapshot::load(data)).map(Snapshot)
    }
}

// ------------------------------------------------------------ handles

/// A JS function; call it like a Python function.
#[pyclass(module = "polyracer._polyracer", frozen)]
struct JSFunction(pr::JsHandle);

#[pymethods]
impl JSFunction {
    #[pyo3(signature = (*args, timeout=None))]
    fn __call__(&self, py: Python<'_>, args: &Bound<'_, PyTuple>, timeout: Option<f64>) -> PyResult<Py<PyAny>> {
        let argv = args_from_py(args)?;
        let t = seconds(timeout)?;
        let v = res(py, py.detach(|| self.0.call_with_timeout(&argv, t)))?;
        to_py(py, v)
    }

    fn __repr__(&self) -> String {
        "<JSFunction>".into()
    }
}

/// A JS object held in its context; a mutable mapping of its own keys.
#[pyclass(module = "polyracer._polyracer", frozen)]
struct JSObject(pr::JsHandle);

fn key_value(key: &Bound<'_, PyAny>) -> PyResult<pr::Value> {
    from_py(key)
}

#[pymethods]
impl JSObject {
    fn __getitem__(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let k = key_value(key)?;
        let v = res(py, py.detach(|| self.0.get(k)))?;
        if matches!(v, pr::Value::Undefined) {
            let keys = res(py, py.detach(|| self.0.keys()))?;
            if !keys.iter().any(|s| Some(s.as_str()) == key.extract::<String>().ok().as_deref()) {
                return Err(pyo3::exceptions::PyKeyError::new_err(key.clone().unbind()));
            }
        }
        to_py(py, v)
    }

    fn __setitem__(&self, py: Python<'_>, key: &Bound<'_, PyAny>, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let (k, v) = (key_value(key)?, from_py(value)?);
        res(py, py.detach(|| self.0.set(k, v)))
    }

    fn __delitem__(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<()> {
        let k = key_value(key)?;
        res(py, py.detach(|| self.0.delete(k))).map(drop)
    }

    fn keys(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        res(py, py.detach(|| self.0.keys()))
    }

    fn __iter__(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let keys = self.keys(py)?;
        Ok(PyList::new(py, keys)?.try_iter()?.into_any().unbind())
    }

    fn __len__(&self, py: Python<'_>) -> PyResult<usize> {
        Ok(self.keys(py)?.len())
    }

    fn __contains__(&self, py: Python<'_>, key: &str) -> PyResult<bool> {
        Ok(self.keys(py)?.iter().any(|k| k == key))
    }

    /// A Python copy of the object.
    fn to_py(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let v = res(py, py.detach(|| self.0.to_value()))?;
        to_py(py, v)
    }

    fn __repr__(&self) -> String {
        "<JSObject>".into()
    }
}

/// A JS array held in its context; a mutable sequence.
#[pyclass(module = "polyracer._polyracer", frozen)]
struct JSArray(pr::JsHandle);

impl JSArray {
    fn index(&self, py: Python<'_>, i: isize) -> PyResult<usize> {
        let len = res(py, py.detach(|| self.0.length()))? as isize;
        let j = if i < 0 { len + i } else { i };
        if j < 0 || j >= len {
            return Err(pyo3::exceptions::PyIndexError::new_err("JSArray index out of range"));
        }
        Ok(j as usize)
    }
}

#[pymethods]
impl JSArray {
    fn __len__(&self, py: Python<'_>) -> PyResult<usize> {
        res(py, py.detach(|| self.0.length()))
    }

    fn __getitem__(&self, py: Python<'_>, i: isize) -> PyResult<Py<PyAny>> {
        let j = self.index(py, i)?;
        let v = res(py, py.detach(|| self.0.get(j)))?;
        to_py(py, v)
    }

    fn __setitem__(&self, py: Python<'_>, i: isize, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let j = self.index(py, i)?;
        let v = from_py(value)?;
        res(py, py.detach(|| self.0.set(j, v)))
    }

    fn __delitem__(&self, py: Python<'_>, i: isize) -> PyResult<()> {
        let j = self.index(py, i)?;
        res(py, py.detach(|| self.0.call_method("splice", &[pr::Value::from(j), pr::Value::from(1)]))).map(drop)
    }

    fn insert(&self, py: Python<'_>, i: isize, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let len = self.__len__(py)? as isize;
        let j = if i < 0 { (len + i).max(0) } else { i.min(len) };
        let v = from_py(value)?;
        res(py, py.detach(|| self.0.call_method("splice", &[pr::Value::from(j), pr::Value::from(0), v]))).map(drop)
    }

    fn to_py(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let v = res(py, py.detach(|| self.0.to_value()))?;
        to_py(py, v)
    }

    fn __repr__(&self) -> String {
        "<JSArray>".into()
    }
}

/// A JS promise: `result(timeout=)` waits for it; `await` it in asyncio.
#[pyclass(module = "polyracer._polyracer", frozen)]
struct JSPromise(pr::JsHandle);

#[pymethods]
impl JSPromise {
    #[pyo3(signature = (timeout=None))]
    fn result(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Py<PyAny>> {
        let t = seconds(timeout)?;
        let v = res(py, py.detach(|| self.0.await_promise(t)))?;
        to_py(py, v)
    }

    fn __await__(slf: &Bound<'_, Self>) -> PyResult<Py<PyAny>> {
        let helper = slf.py().import("polyracer._aio")?.getattr("await_promise")?;
        Ok(helper.call1((slf,))?.call_method0("__await__")?.unbind())
    }

    fn __repr__(&self) -> String {
        "<JSPromise>".into()
    }
}

/// A JS symbol.
#[pyclass(module = "polyracer._polyracer", frozen)]
struct JSSymbol(pr::JsHandle);

#[pymethods]
impl JSSymbol {
    #[getter]
    fn description(&self, py: Python<'_>) -> PyResult<String> {
        res(py, py.detach(|| self.0.to_js_string()))
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!("<JSSymbol {}>", self.description(py)?))
    }
}

// ------------------------------------------------------------ module

#[pyfunction]
#[pyo3(signature = (*flags, single_threaded=false))]
fn configure(py: Python<'_>, flags: Vec<String>, single_threaded: bool) -> PyResult<()> {
    res(py, pr::configure(pr::EngineOptions { flags, single_threaded }))
}

/// V8's code-cache version tag (starts the engine; see `configure`).
#[pyfunction]
fn cached_data_version_tag() -> u32 {
    pr::cached_data_version_tag()
}

#[pymodule(gil_used = false)]
fn _polyracer(m: &Bound<'_, PyModule>) -> PyResult<()> {
    pr::set_wait_hook(Some(check_signals));
    m.add_class::<Context>()?;
    m.add_class::<Script>()?;
    m.add_class::<Snapshot>()?;
    m.add_class::<JSFunction>()?;
    m.add_class::<JSObject>()?;
    m.add_class::<JSArray>()?;
    m.add_class::<JSPromise>()?;
    m.add_class::<JSSymbol>()?;
    m.add_class::<Completer>()?;
    m.add_function(wrap_pyfunction!(configure, m)?)?;
    m.add("V8_VERSION", pr::v8_version())?;
    m.add_function(wrap_pyfunction!(cached_data_version_tag, m)?)?;
    Ok(())
}
