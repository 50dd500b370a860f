//! Call options from Ruby values; timeouts and memory limits are validated
//! by core (the same ranges and messages in every binding).

use std::time::Duration;

use magnus::value::ReprValue;
use magnus::{Error, Ruby, TryConvert, Value};
use polyracer as pr;

use crate::error::to_rb_err;

/// Timeouts in seconds, validated by core (same range and message in every binding).
pub(crate) fn seconds(ruby: &Ruby, t: Option<Value>) -> Result<Option<Duration>, Error> {
    let Some(t) = t.filter(|t| !t.is_nil()) else { return Ok(None) };
    let invalid = |m: &str| to_rb_err(ruby, None, pr::Error::InvalidArgument(m.into()));
    let s: f64 = f64::try_convert(t).map_err(|_| invalid("timeout must be a number of seconds or nil"))?;
    pr::limits::optional_timeout(Some(s), pr::limits::TimeUnit::Seconds).map_err(|e| to_rb_err(ruby, None, e))
}

/// A memory limit in bytes (an Integer, or a Float with no fraction),
/// validated and rounded by core.
pub(crate) fn memory_limit(ruby: &Ruby, m: Option<Value>) -> Result<Option<usize>, Error> {
    let Some(m) = m.filter(|m| !m.is_nil()) else { return Ok(None) };
    let checked = if let Some(i) = magnus::Integer::from_value(m) {
        // A Bignum beyond i64 is out of range all the same.
        pr::limits::memory_limit(i.to_i64().map_or(i128::MAX, i128::from))
    } else if let Some(f) = magnus::Float::from_value(m) {
        pr::limits::memory_limit_f64(f.to_f64())
    } else {
        Err(pr::Error::InvalidArgument(format!("memory limit must be a whole number of bytes, not {}", unsafe {
            m.classname()
        })))
    };
    checked.map(Some).map_err(|e| to_rb_err(ruby, None, e))
}

pub(crate) fn eval_opts(
    ruby: &Ruby,
    filename: Option<String>,
    timeout: Option<Value>,
    await_promise: bool,
) -> Result<pr::EvalOptions, Error> {
    Ok(pr::EvalOptions { filename, timeout: seconds(ruby, timeout)?, as_handle: false, await_promise })
}
