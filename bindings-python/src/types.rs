//! The Python types the extension uses or defines: the classes of
//! `polyracer._types` (errors, `undefined`) and the handle classes (their
//! methods are in `handles`).

use polyracer as pr;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;

pub(crate) static TYPES: PyOnceLock<Py<PyModule>> = PyOnceLock::new();

pub(crate) fn types(py: Python<'_>) -> PyResult<&Bound<'_, PyModule>> {
    TYPES.get_or_try_init(py, || py.import("polyracer._types").map(Bound::unbind)).map(|m| m.bind(py))
}

pub(crate) fn error_class<'py>(py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
    types(py)?.getattr(name)
}

pub(crate) fn conversion(py: Python<'_>, msg: String) -> PyErr {
    match error_class(py, "ConversionError").and_then(|c| c.call1((msg,))) {
        Ok(inst) => PyErr::from_value(inst),
        Err(e) => e,
    }
}

pub(crate) static UNDEFINED: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

pub(crate) fn undefined(py: Python<'_>) -> PyResult<Py<PyAny>> {
    UNDEFINED.get_or_try_init(py, || Ok(types(py)?.getattr("undefined")?.unbind())).map(|u| u.clone_ref(py))
}

/// A JS function; call it like a Python function.
#[pyclass(module = "polyracer._polyracer", frozen)]
pub(crate) struct JSFunction(pub(crate) pr::JsHandle);

/// A JS object held in its context; a mutable mapping of its own keys.
#[pyclass(module = "polyracer._polyracer", frozen)]
pub(crate) struct JSObject(pub(crate) pr::JsHandle);

/// A JS array held in its context; a mutable sequence.
#[pyclass(module = "polyracer._polyracer", frozen)]
pub(crate) struct JSArray(pub(crate) pr::JsHandle);

/// A JS promise: `result(timeout=)` waits for it; `await` it in asyncio.
#[pyclass(module = "polyracer._polyracer", frozen)]
pub(crate) struct JSPromise(pub(crate) pr::JsHandle);

/// A JS symbol.
#[pyclass(module = "polyracer._polyracer", frozen)]
pub(crate) struct JSSymbol(pub(crate) pr::JsHandle);
