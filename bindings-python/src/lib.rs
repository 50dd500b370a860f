//! `polyracer._polyracer`: the native half of the Python package. Thin by
//! design: value conversion, error mapping and GIL handling; everything
//! else lives in the `polyracer` core crate.

mod aio;
mod context;
mod error;
mod from_py;
mod handles;
mod host;
mod memory;
mod options;
mod to_py;
mod types;

use polyracer as pr;
use pyo3::prelude::*;

use aio::PendingCall;
use context::{Context, Script, Snapshot};
use error::{check_signals, OrRaise};
use host::Completer;
use types::{JSArray, JSFunction, JSObject, JSPromise, JSSymbol};

#[pyfunction]
#[pyo3(signature = (*flags, single_threaded=false))]
fn configure(py: Python<'_>, flags: Vec<String>, single_threaded: bool) -> PyResult<()> {
    pr::configure(pr::EngineOptions { flags, single_threaded }).or_raise(py)
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
    m.add_class::<PendingCall>()?;
    m.add_class::<memory::SandboxMemory>()?;
    m.add_function(wrap_pyfunction!(configure, m)?)?;
    m.add("V8_VERSION", pr::v8_version())?;
    m.add_function(wrap_pyfunction!(cached_data_version_tag, m)?)?;
    Ok(())
}
