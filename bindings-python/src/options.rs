//! Timeouts and memory limits from Python numbers, validated by core (the
//! same ranges and messages in every binding).

use std::time::Duration;

use polyracer as pr;
use pyo3::prelude::*;

use crate::error::to_pyerr;

/// Timeouts in seconds, validated by core (same range and message in every binding).
pub(crate) fn seconds(t: Option<f64>) -> PyResult<Option<Duration>> {
    Python::attach(|py| pr::limits::optional_timeout(t, pr::limits::TimeUnit::Seconds).map_err(|e| to_pyerr(py, e)))
}

/// A memory limit in bytes (an int, or a float with no fraction such as
/// `2e8`), validated and rounded by core.
pub(crate) fn memory_limit(py: Python<'_>, m: Option<&Bound<'_, PyAny>>) -> PyResult<Option<usize>> {
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
