//! Validation of the durations and byte sizes users pass (timeouts, memory
//! limits), done once here so every binding accepts the same values and
//! rejects the rest with the same `InvalidArgument` message.
//!
//! Bindings convert their language's number to `f64` (or `i128` for
//! integers) and call these; nothing else parses a limit. Durations and
//! sizes that reach V8 or `Instant` arithmetic unchecked panic (a timeout of
//! `1e20` s overflows `Duration::from_secs_f64`) or abort the process (an
//! unaligned heap limit trips a V8 `CHECK`), so every value is checked here.

use std::time::Duration;

use crate::error::{Error, Result};

/// The longest timeout accepted: a year. Longer ones are almost always a
/// unit mistake (milliseconds passed as seconds); "no timeout" is `None`.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// The smallest memory limit: below this V8 cannot set up a heap at all.
pub const MIN_MEMORY_LIMIT: u64 = 4 << 20;

/// The largest memory limit: 1 TiB. V8 sizes its heap spaces from the
/// limit, and values near the address space overflow that arithmetic.
pub const MAX_MEMORY_LIMIT: u64 = 1 << 40;

/// The granularity V8 needs for a heap limit. Below 128 MiB V8 reserves a
/// code range as large as the limit and checks that it is a whole number of
/// pages; limits are rounded *down* to this, so the honoured limit never
/// exceeds the one asked for.
pub const MEMORY_LIMIT_GRANULARITY: u64 = 1 << 20;

/// The unit a host language states durations in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeUnit {
    /// Python, Ruby, Swift (`timeout=1.5`).
    Seconds,
    /// JavaScript, MiniRacer, the CLI (`timeout: 1500`).
    Milliseconds,
}

impl TimeUnit {
    fn per_second(self) -> f64 {
        match self {
            TimeUnit::Seconds => 1.0,
            TimeUnit::Milliseconds => 1000.0,
        }
    }

    fn name(self) -> &'static str {
        match self {
            TimeUnit::Seconds => "seconds",
            TimeUnit::Milliseconds => "milliseconds",
        }
    }
}

/// A timeout given as a number in `unit`: finite, from 0 to [`MAX_TIMEOUT`].
pub fn timeout(value: f64, unit: TimeUnit) -> Result<Duration> {
    let max = MAX_TIMEOUT.as_secs_f64() * unit.per_second();
    // `!(a <= b)` is also true for NaN.
    if !(0.0..=max).contains(&value) {
        return Err(Error::InvalidArgument(format!(
            "timeout must be a number of {} from 0 to {max}, not {}",
            unit.name(),
            show_number(value)
        )));
    }
    Ok(Duration::from_secs_f64(value / unit.per_second()))
}

/// An optional timeout; `None` means no timeout.
pub fn optional_timeout(value: Option<f64>, unit: TimeUnit) -> Result<Option<Duration>> {
    value.map(|v| timeout(v, unit)).transpose()
}

/// Checks a `Duration` a Rust caller built: at most [`MAX_TIMEOUT`].
pub fn check_timeout(value: Duration) -> Result<Duration> {
    if value > MAX_TIMEOUT {
        return Err(Error::InvalidArgument(format!(
            "timeout must be a number of seconds from 0 to {}, not {}",
            MAX_TIMEOUT.as_secs(),
            value.as_secs_f64()
        )));
    }
    Ok(value)
}

/// A memory limit in bytes: an integer from [`MIN_MEMORY_LIMIT`] to
/// [`MAX_MEMORY_LIMIT`]. Returns the limit V8 is given (rounded down to
/// [`MEMORY_LIMIT_GRANULARITY`]).
pub fn memory_limit(bytes: i128) -> Result<usize> {
    if !(i128::from(MIN_MEMORY_LIMIT)..=i128::from(MAX_MEMORY_LIMIT)).contains(&bytes) {
        return Err(memory_limit_error(&bytes.to_string()));
    }
    let rounded = (bytes as u64) / MEMORY_LIMIT_GRANULARITY * MEMORY_LIMIT_GRANULARITY;
    usize::try_from(rounded).map_err(|_| memory_limit_error(&bytes.to_string()))
}

/// A [`ContextOptions::gc_heap_limit`](crate::ContextOptions::gc_heap_limit)
/// in bytes: from 1 byte to [`MAX_MEMORY_LIMIT`], not rounded.
pub fn gc_heap_limit(bytes: i128) -> Result<usize> {
    if !(1..=i128::from(MAX_MEMORY_LIMIT)).contains(&bytes) {
        return Err(Error::InvalidArgument(format!(
            "gc heap limit must be a whole number of bytes from 1 to {MAX_MEMORY_LIMIT}, not {bytes}"
        )));
    }
    Ok(bytes as usize)
}

/// A memory limit given as a float (JavaScript numbers): it must be a whole
/// number, then as [`memory_limit`].
pub fn memory_limit_f64(bytes: f64) -> Result<usize> {
    if bytes.fract() != 0.0 || !bytes.is_finite() || bytes.abs() > 1e30 {
        return Err(memory_limit_error(&show_number(bytes)));
    }
    memory_limit(bytes as i128)
}

fn memory_limit_error(got: &str) -> Error {
    Error::InvalidArgument(format!(
        "memory limit must be a whole number of bytes from {MIN_MEMORY_LIMIT} (4 MiB) to {MAX_MEMORY_LIMIT} (1 TiB), not {got}"
    ))
}

/// A byte size as people write it on a command line: `1048576`, `64M`,
/// `1.5G`, `512K`, `100000000B`. Suffixes are binary (K = 1024). The result
/// is not range-checked: pass it on to [`memory_limit`].
pub fn parse_byte_size(text: &str) -> Result<i128> {
    let s = text.trim();
    let bad = || Error::InvalidArgument(format!("{text:?} is not a size like 64M, 1.5G or 1048576"));
    let (digits, mult) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let mult: u64 = match c.to_ascii_uppercase() {
                'B' => 1,
                'K' => 1 << 10,
                'M' => 1 << 20,
                'G' => 1 << 30,
                'T' => 1 << 40,
                _ => return Err(bad()),
            };
            (s[..i].trim_end(), mult)
        }
        _ => (s, 1),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(bad());
    }
    if let Ok(n) = digits.parse::<i128>() {
        return n.checked_mul(i128::from(mult)).ok_or_else(bad);
    }
    let n: f64 = digits.parse().map_err(|_| bad())?;
    let bytes = n * mult as f64;
    if !bytes.is_finite() || bytes > 1e30 {
        return Err(bad());
    }
    Ok(bytes.floor() as i128)
}

/// `1e+20`, `NaN`, `-1`: the number as the user would recognise it.
fn show_number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "Infinity" } else { "-Infinity" }.into()
    } else if v.fract() == 0.0 && v.abs() < 1e16 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}
