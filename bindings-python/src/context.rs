//! `Context`, `Script` and `Snapshot`: calls into core with the GIL released.

use polyracer as pr;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyString, PyTuple};

use crate::aio::{self, PendingCall};
use crate::error::{built, host_error, OrRaise};
use crate::from_py::PySource;
use crate::host::{call_python, Completer};
use crate::options::{memory_limit, seconds};
use crate::to_py::{handle_to_py, value_to_py, PySink};
use crate::types::JSFunction;

// ------------------------------------------------------------ conversion

/// A JavaScript context: its own V8 isolate and heap. Calls run JS on the
/// calling thread (with the GIL released); threads take turns.
#[pyclass(module = "polyracer._polyracer", subclass, frozen)]
pub(crate) struct Context {
    inner: pr::Context,
}

pub(crate) fn eval_options(
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
            ..Default::default()
        };
        let inner = py.detach(|| pr::Context::new(options)).or_raise(py)?;
        Ok(Context { inner })
    }

    /// `as_handle=True` returns objects and arrays as `JSObject`/`JSArray`
    /// handles instead of copies; `share_buffers=True` returns byte buffers
    /// as writable `memoryview`s of the sandbox's memory instead of `bytes`.
    #[pyo3(signature = (code, *, filename=None, timeout=None, await_promise=false, as_handle=false, share_buffers=false))]
    #[allow(clippy::too_many_arguments)]
    fn eval(
        &self,
        py: Python<'_>,
        code: &str,
        filename: Option<String>,
        timeout: Option<f64>,
        await_promise: bool,
        as_handle: bool,
        share_buffers: bool,
    ) -> PyResult<Py<PyAny>> {
        let opts = eval_options(filename, timeout, await_promise, as_handle)?;
        let mut sink = PySink::detached().sharing_bytes(share_buffers);
        let r = py.detach(|| self.inner.eval_into(code, opts, &mut sink));
        built(py, r, sink, None)
    }

    #[pyo3(signature = (target, *args, timeout=None, await_promise=false, as_handle=false, share_buffers=false))]
    #[allow(clippy::too_many_arguments)]
    fn call(
        &self,
        py: Python<'_>,
        target: &Bound<'_, PyAny>,
        args: &Bound<'_, PyTuple>,
        timeout: Option<f64>,
        await_promise: bool,
        as_handle: bool,
        share_buffers: bool,
    ) -> PyResult<Py<PyAny>> {
        let mut source = PySource::new();
        let argv = source.args(args)?;
        let opts = eval_options(None, timeout, await_promise, as_handle)?;
        let mut sink = PySink::detached().sharing_bytes(share_buffers);
        let r = if let Ok(f) = target.cast::<JSFunction>() {
            let h = f.get().0.clone();
            py.detach(|| self.inner.call_into(&h, &mut source, &argv, opts, &mut sink))
        } else if let Ok(s) = target.cast::<PyString>() {
            let s = s.to_string_lossy().into_owned();
            py.detach(|| self.inner.call_into(s.as_str(), &mut source, &argv, opts, &mut sink))
        } else {
            return Err(PyTypeError::new_err("call() needs a JSFunction, a global path or a function expression"));
        };
        built(py, r, sink, Some(&mut source))
    }

    /// Evaluates now; `done(ok, value)` gets the (awaited) result once it
    /// settles. Returns the `PendingCall` that can cancel the await.
    #[pyo3(signature = (code, done, *, filename=None, timeout=None, as_handle=false))]
    fn _eval_future(
        &self,
        py: Python<'_>,
        code: &str,
        done: Py<PyAny>,
        filename: Option<String>,
        timeout: Option<f64>,
        as_handle: bool,
    ) -> PyResult<Py<PendingCall>> {
        let opts = eval_options(filename, timeout, false, as_handle)?;
        let fut = py.detach(|| self.inner.eval_async(code, opts));
        aio::deliver(py, fut, done)
    }

    /// `call` with its result handed to `done(ok, value)` (see `_eval_future`).
    #[pyo3(signature = (target, args, done, *, timeout=None))]
    fn _call_future(
        &self,
        py: Python<'_>,
        target: &Bound<'_, PyAny>,
        args: &Bound<'_, PyTuple>,
        done: Py<PyAny>,
        timeout: Option<f64>,
    ) -> PyResult<Py<PendingCall>> {
        let argv = crate::from_py::values_from_py(args)?;
        let opts = eval_options(None, timeout, false, false)?;
        let fut = if let Ok(f) = target.cast::<JSFunction>() {
            let h = f.get().0.clone();
            py.detach(|| self.inner.call_async(&h, &argv, opts))
        } else if let Ok(s) = target.cast::<PyString>() {
            let s = s.to_string_lossy().into_owned();
            py.detach(|| self.inner.call_async(s.as_str(), &argv, opts))
        } else {
            return Err(PyTypeError::new_err("call() needs a JSFunction, a global path or a function expression"));
        };
        aio::deliver(py, fut, done)
    }

    /// Installs `schedule()` (or removes it with `None`): called when timers
    /// or async completions are due and no thread waits on the context; it
    /// returns True once it has queued `run_pending_tasks` on its loop.
    fn _set_task_scheduler(&self, schedule: Option<Py<PyAny>>) {
        self.inner.set_task_scheduler(schedule.map(aio::scheduler));
    }

    /// Runs the timers, async host completions and V8 tasks that are due.
    fn run_pending_tasks(&self, py: Python<'_>) -> PyResult<()> {
        py.detach(|| self.inner.run_pending_tasks().map(drop)).or_raise(py)
    }

    fn set_global(&self, py: Python<'_>, name: &str, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let mut source = PySource::new();
        let v = source.arg(value)?;
        let r = py.detach(|| self.inner.set_global_from(name, &mut source, &v));
        if r.is_err() {
            if let Some(pe) = source.take_error() {
                return Err(pe);
            }
        }
        r.or_raise(py)
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
                            items.push(value_to_py(py, a)?);
                        }
                        function.bind(py).call1(PyTuple::new(py, items)?)?;
                        Ok(())
                    };
                    if let Err(e) = run() {
                        e.print(py);
                    }
                })
            });
            return r.or_raise(py);
        }
        (self.inner.expose_raw(name, move |_ctx, call| call_python(&function, call))).or_raise(py)
    }

    fn terminate(&self) {
        self.inner.terminate();
    }

    fn heap_stats(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let s = py.detach(|| self.inner.heap_stats()).or_raise(py)?;
        let d = PyDict::new(py);
        for (k, v) in s.entries() {
            d.set_item(k, v)?;
        }
        Ok(d.into_any().unbind())
    }

    fn low_memory_notification(&self, py: Python<'_>) -> PyResult<()> {
        py.detach(|| self.inner.low_memory_notification()).or_raise(py)
    }

    fn write_heap_snapshot(&self, py: Python<'_>, path: std::path::PathBuf) -> PyResult<()> {
        py.detach(|| self.inner.write_heap_snapshot(&path)).or_raise(py)
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
        let s = py
            .detach(|| {
                self.inner.compile(
                    source,
                    pr::CompileOptions {
                        filename: filename.as_deref(),
                        cached_data: cached_data.as_deref(),
                        produce_cache,
                    },
                )
            })
            .or_raise(py)?;
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
        let m = py.detach(|| self.inner.eval_module_with(source, filename, resolve, opts)).or_raise(py)?;
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
pub(crate) struct Script(pub(crate) pr::Script);

#[pymethods]
impl Script {
    #[pyo3(signature = (*, timeout=None))]
    fn run(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Py<PyAny>> {
        let opts = eval_options(None, timeout, false, false)?;
        let mut sink = PySink::detached();
        let r = py.detach(|| self.0.run_into(opts, &mut sink));
        built(py, r, sink, None)
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
pub(crate) struct Snapshot(pub(crate) pr::Snapshot);

#[pymethods]
impl Snapshot {
    #[staticmethod]
    fn create(py: Python<'_>, source: &str) -> PyResult<Self> {
        py.detach(|| pr::Snapshot::create(source)).or_raise(py).map(Snapshot)
    }

    fn warmup(&self, py: Python<'_>, source: &str) -> PyResult<Self> {
        py.detach(|| self.0.warmup(source)).or_raise(py).map(Snapshot)
    }

    fn dump<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.0.as_bytes())
    }

    #[staticmethod]
    fn load(py: Python<'_>, data: &[u8]) -> PyResult<Self> {
        pr::Snapshot::load(data).or_raise(py).map(Snapshot)
    }
}

// ------------------------------------------------------------ handles
