//! Core errors as the Python exception classes of `polyracer._types`:
//! the one place the binding maps errors, plus pending signals.

use std::sync::Arc;

use polyracer as pr;
use pyo3::prelude::*;
use pyo3::types::PyList;

use crate::from_py::PySource;
use crate::to_py::{value_to_py, PySink};
use crate::types::{error_class, types};

/// The original Python exception behind a JS error, returned as `__cause__`.
pub(crate) struct PyCause(pub(crate) Py<PyAny>);

/// Maps a core error to the matching `polyracer` exception.
pub(crate) fn to_pyerr(py: Python<'_>, e: pr::Error) -> PyErr {
    match build_pyerr(py, e) {
        Ok(err) => err,
        Err(err) => err,
    }
}

pub(crate) fn build_pyerr(py: Python<'_>, e: pr::Error) -> PyResult<PyErr> {
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
        let frame = types(py)?.getattr("StackFrame")?;
        let frames = PyList::empty(py);
        for f in &ex.frames {
            frames.append(frame.call1((f.function.as_deref(), f.file.as_deref(), f.line, f.column))?)?;
        }
        inst.setattr("frames", frames)?;
        inst.setattr("filename", ex.filename.as_deref())?;
        inst.setattr("line", ex.line)?;
        inst.setattr("column", ex.column)?;
        inst.setattr("report", &ex.report)?;
        inst.setattr("value", value_to_py(py, (*ex.value).clone()).unwrap_or_else(|_| py.None()))?;
        if let Some(cause) = ex.cause_as::<PyCause>() {
            inst.setattr("__cause__", cause.0.bind(py))?;
        }
    }
    Ok(PyErr::from_value(inst))
}

std::thread_local! {
    /// A signal exception (KeyboardInterrupt) raised while this thread waited.
    pub(crate) static PENDING_SIGNAL: std::cell::RefCell<Option<PyErr>> = const { std::cell::RefCell::new(None) };
}

/// Core results as Python results: the binding's one way of raising a core
/// error.
pub(crate) trait OrRaise<T> {
    fn or_raise(self, py: Python<'_>) -> PyResult<T>;
}

impl<T> OrRaise<T> for pr::Result<T> {
    fn or_raise(self, py: Python<'_>) -> PyResult<T> {
        // A signal raised during the call wins: the call was terminated for
        // it (or finished just before the termination landed).
        if let Some(sig) = PENDING_SIGNAL.with(|p| p.borrow_mut().take()) {
            return Err(sig);
        }
        self.map_err(|e| to_pyerr(py, e))
    }
}

pub(crate) fn host_error(py: Python<'_>, e: PyErr) -> pr::HostError {
    let value = e.value(py);
    let name = value.get_type().name().map(|n| n.to_string()).unwrap_or_else(|_| "Error".into());
    let message = value.str().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let js_name = if name == "TypeError" { "TypeError".to_string() } else { name };
    pr::HostError::new(message).with_name(js_name).with_payload(Arc::new(PyCause(value.clone().into_any().unbind())))
}

/// Core's wait hook: runs Python's signal handlers during long calls, on
/// the calling thread (they act only on the main thread); an exception they
/// raise (KeyboardInterrupt on Ctrl-C) is kept for `or_raise` and stops the
/// call.
pub(crate) fn check_signals() -> bool {
    Python::attach(|py| match py.check_signals() {
        Ok(()) => false,
        Err(e) => {
            PENDING_SIGNAL.with(|p| *p.borrow_mut() = Some(e));
            true
        }
    })
}

/// The result of a call that built it through `sink` (reading arguments
/// through `source`): a Python error either of them kept is raised rather
/// than core's report that the walk stopped.
pub(crate) fn built(
    py: Python<'_>,
    r: pr::Result<()>,
    sink: PySink,
    source: Option<&mut PySource>,
) -> PyResult<Py<PyAny>> {
    let mut sink = sink;
    if r.is_err() {
        if let Some(pe) = source.and_then(|s| s.take_error()).or_else(|| sink.take_error()) {
            return Err(pe);
        }
    }
    r.or_raise(py)?;
    sink.finish(py)
}
