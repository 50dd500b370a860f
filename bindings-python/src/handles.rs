//! JS values kept in a context: `JSFunction`, `JSObject`, `JSArray`,
//! `JSPromise`, `JSSymbol`.

use polyracer as pr;
use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple};

use crate::aio::{self, PendingCall};
use crate::error::{built, OrRaise};
use crate::from_py::{value_from_py, PySource};
use crate::options::seconds;
use crate::to_py::{value_to_py, PySink};
use crate::types::{JSArray, JSFunction, JSObject, JSPromise, JSSymbol};

#[pymethods]
impl JSFunction {
    #[pyo3(signature = (*args, timeout=None))]
    fn __call__(&self, py: Python<'_>, args: &Bound<'_, PyTuple>, timeout: Option<f64>) -> PyResult<Py<PyAny>> {
        let mut source = PySource::new();
        let argv = source.args(args)?;
        let t = seconds(timeout)?;
        let mut sink = PySink::detached();
        let r = py.detach(|| self.0.call_into(&mut source, &argv, t, &mut sink));
        built(py, r, sink, Some(&mut source))
    }

    fn __repr__(&self) -> String {
        "<JSFunction>".into()
    }
}

#[pymethods]
impl JSObject {
    fn __getitem__(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let k = value_from_py(key)?;
        let v = py.detach(|| self.0.get(k)).or_raise(py)?;
        if matches!(v, pr::Value::Undefined) {
            let keys = py.detach(|| self.0.keys()).or_raise(py)?;
            if !keys.iter().any(|s| Some(s.as_str()) == key.extract::<String>().ok().as_deref()) {
                return Err(pyo3::exceptions::PyKeyError::new_err(key.clone().unbind()));
            }
        }
        value_to_py(py, v)
    }

    fn __setitem__(&self, py: Python<'_>, key: &Bound<'_, PyAny>, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let (k, v) = (value_from_py(key)?, value_from_py(value)?);
        py.detach(|| self.0.set(k, v)).or_raise(py)
    }

    fn __delitem__(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<()> {
        let k = value_from_py(key)?;
        py.detach(|| self.0.delete(k)).or_raise(py).map(drop)
    }

    fn keys(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        py.detach(|| self.0.keys()).or_raise(py)
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
        let mut sink = PySink::detached();
        let r = py.detach(|| self.0.copy_into(&mut sink));
        built(py, r, sink, None)
    }

    fn __repr__(&self) -> String {
        "<JSObject>".into()
    }
}

impl JSArray {
    fn index(&self, py: Python<'_>, i: isize) -> PyResult<usize> {
        let len = py.detach(|| self.0.length()).or_raise(py)? as isize;
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
        py.detach(|| self.0.length()).or_raise(py)
    }

    fn __getitem__(&self, py: Python<'_>, i: isize) -> PyResult<Py<PyAny>> {
        let j = self.index(py, i)?;
        let v = py.detach(|| self.0.get(j)).or_raise(py)?;
        value_to_py(py, v)
    }

    fn __setitem__(&self, py: Python<'_>, i: isize, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let j = self.index(py, i)?;
        let v = value_from_py(value)?;
        py.detach(|| self.0.set(j, v)).or_raise(py)
    }

    fn __delitem__(&self, py: Python<'_>, i: isize) -> PyResult<()> {
        let j = self.index(py, i)?;
        py.detach(|| self.0.call_method("splice", &[pr::Value::from(j), pr::Value::from(1)])).or_raise(py).map(drop)
    }

    fn insert(&self, py: Python<'_>, i: isize, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let len = self.__len__(py)? as isize;
        let j = if i < 0 { (len + i).max(0) } else { i.min(len) };
        let v = value_from_py(value)?;
        py.detach(|| self.0.call_method("splice", &[pr::Value::from(j), pr::Value::from(0), v])).or_raise(py).map(drop)
    }

    fn to_py(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let mut sink = PySink::detached();
        let r = py.detach(|| self.0.copy_into(&mut sink));
        built(py, r, sink, None)
    }

    fn __repr__(&self) -> String {
        "<JSArray>".into()
    }
}

#[pymethods]
impl JSPromise {
    #[pyo3(signature = (timeout=None))]
    fn result(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Py<PyAny>> {
        let t = seconds(timeout)?;
        let v = py.detach(|| self.0.await_promise(t)).or_raise(py)?;
        value_to_py(py, v)
    }

    /// `done(ok, value)` gets the promise's result once it settles.
    #[pyo3(signature = (done, timeout=None))]
    fn _future(&self, py: Python<'_>, done: Py<PyAny>, timeout: Option<f64>) -> PyResult<Py<PendingCall>> {
        let t = seconds(timeout)?;
        let fut = py.detach(|| self.0.await_async(t));
        aio::deliver(py, fut, done)
    }

    fn __await__(slf: &Bound<'_, Self>) -> PyResult<Py<PyAny>> {
        let helper = slf.py().import("polyracer._aio")?.getattr("await_promise")?;
        Ok(helper.call1((slf,))?.call_method0("__await__")?.unbind())
    }

    fn __repr__(&self) -> String {
        "<JSPromise>".into()
    }
}

#[pymethods]
impl JSSymbol {
    #[getter]
    fn description(&self, py: Python<'_>) -> PyResult<String> {
        py.detach(|| self.0.to_js_string()).or_raise(py)
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!("<JSSymbol {}>", self.description(py)?))
    }
}

// ------------------------------------------------------------ module
