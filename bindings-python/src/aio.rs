//! asyncio without executor threads: a call runs on the calling thread and,
//! if its result is a pending promise, core's `JsFuture` calls `done(ok,
//! value)` when it settles (on whichever thread settled it, with the GIL
//! taken here); `polyracer._aio` hands that to the awaiting asyncio future.
//! The context's task scheduler is a Python callable that queues
//! `run_pending_tasks` on the asyncio loop, so timers and async host
//! completions run on the host's loop while it is otherwise idle.

use std::sync::{Arc, Mutex};

use polyracer as pr;
use pyo3::prelude::*;

use crate::error::to_pyerr;
use crate::to_py::value_to_py;

/// The awaiter's interest in a pending JS result; `cancel()` withdraws it.
#[pyclass(module = "polyracer._polyracer", frozen)]
pub(crate) struct PendingCall(Mutex<Option<pr::JsFuture>>);

#[pymethods]
impl PendingCall {
    /// Withdraws the interest in the promise; the context stays usable.
    fn cancel(&self) {
        let f = self.0.lock().unwrap_or_else(|e| e.into_inner()).take();
        drop(f);
    }

    fn __repr__(&self) -> &'static str {
        "<PendingCall>"
    }
}

/// Hands `fut`'s result to `done(ok, value_or_exception)` and returns the
/// handle that can cancel it.
pub(crate) fn deliver(py: Python<'_>, fut: pr::JsFuture, done: Py<PyAny>) -> PyResult<Py<PendingCall>> {
    fut.on_settled(move |r| {
        Python::attach(|py| {
            let args = match r {
                Ok(v) => value_to_py(py, v).map(|v| (true, v)),
                Err(e) => Ok((false, to_pyerr(py, e).into_value(py).into_any())),
            };
            let outcome = match args {
                Ok(a) => done.call1(py, a).map(drop),
                Err(e) => done.call1(py, (false, e.into_value(py))).map(drop),
            };
            if let Err(e) = outcome {
                e.write_unraisable(py, None);
            }
        })
    });
    Py::new(py, PendingCall(Mutex::new(Some(fut))))
}

/// Core's task scheduler backed by a Python callable returning whether it
/// queued the work on its loop.
pub(crate) fn scheduler(schedule: Py<PyAny>) -> Arc<dyn Fn() -> bool + Send + Sync> {
    Arc::new(move || {
        Python::attach(|py| match schedule.call0(py) {
            Ok(v) => v.is_truthy(py).unwrap_or(false),
            Err(e) => {
                e.write_unraisable(py, None);
                false
            }
        })
    })
}
