//! Python callables as host functions, and async completions.

use polyracer as pr;
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use crate::error::host_error;
use crate::from_py::{value_from_py, PySource};
use crate::to_py::PySink;

/// Runs a Python callable for JS, on the calling thread: its arguments are
/// built straight from the JS values and its result read straight into JS
/// (`expose_raw`: no `Value` either way).
pub(crate) fn call_python(f: &Py<PyAny>, call: &mut pr::HostCall) -> Result<(), pr::HostError> {
    Python::attach(|py| {
        let mut items = Vec::with_capacity(call.len());
        for i in 0..call.len() {
            let mut sink = PySink::attached(py);
            if let Err(e) = call.arg_into(i, &mut sink) {
                return Err(sink.take_error().map(|pe| host_error(py, pe)).unwrap_or(e));
            }
            items.push(sink.finish(py).map_err(|e| host_error(py, e))?);
        }
        let args = PyTuple::new(py, items).map_err(|e| host_error(py, e))?;
        let r = f.bind(py).call1(args).map_err(|e| host_error(py, e))?;
        let mut source = PySource::new();
        let ret = source.arg(&r).map_err(|e| host_error(py, e))?;
        call.set_return(&mut source, &ret).map_err(|e| source.take_error().map(|pe| host_error(py, pe)).unwrap_or(e))
    })
}

/// Settles the promise of an async host function; handed to the Python side.
#[pyclass(module = "polyracer._polyracer")]
pub(crate) struct Completer(pub(crate) std::sync::Mutex<Option<pr::Completer>>);

#[pymethods]
impl Completer {
    fn resolve(&self, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let v = value_from_py(value);
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
