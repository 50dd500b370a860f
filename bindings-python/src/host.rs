//! Python callables as host functions, and async completions.

use polyracer as pr;
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use crate::convert::{from_py, to_py};
use crate::error::host_error;

pub(crate) fn call_python(f: &Py<PyAny>, args: Vec<pr::Value>) -> Result<pr::Value, pr::HostError> {
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
pub(crate) struct Completer(pub(crate) std::sync::Mutex<Option<pr::Completer>>);

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
