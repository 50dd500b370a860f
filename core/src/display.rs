//! The readable text form of values (used by the CLI and `Display`).

use std::fmt::{self, Write};

use crate::value::Value;

fn write_json_string(f: &mut dyn Write, s: &str) -> fmt::Result {
    f.write_char('"')?;
    for c in s.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\r' => f.write_str("\\r")?,
            '\t' => f.write_str("\\t")?,
            c if (c as u32) < 0x20 => write!(f, "\\u{:04x}", c as u32)?,
            c => f.write_char(c)?,
        }
    }
    f.write_char('"')
}

fn write_number(f: &mut dyn Write, n: f64) -> fmt::Result {
    if n.is_nan() {
        f.write_str("NaN")
    } else if n.is_infinite() {
        f.write_str(if n > 0.0 { "Infinity" } else { "-Infinity" })
    } else if n == 0.0 && n.is_sign_negative() {
        f.write_str("-0")
    } else {
        write!(f, "{n}")
    }
}

/// Formats a JS time value as ISO 8601, like `Date.prototype.toISOString`.
pub fn iso_date(ms: f64) -> Option<String> {
    if !ms.is_finite() {
        return None;
    }
    let total_ms = ms as i64;
    let days = total_ms.div_euclid(86_400_000);
    let rem = total_ms.rem_euclid(86_400_000);
    // Days since the epoch to a proleptic Gregorian date (civil-from-days).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    let (h, mi, s, milli) = (rem / 3_600_000, rem / 60_000 % 60, rem / 1000 % 60, rem % 1000);
    Some(if (0..=9999).contains(&y) {
        format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{milli:03}Z")
    } else {
        format!("{}{:06}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{milli:03}Z", if y < 0 { '-' } else { '+' }, y.abs())
    })
}

/// JSON where JSON can represent the value; otherwise a JS-like form:
/// `undefined`, `NaN`, `12n`, `Date(...)`, `Uint8Array(3) [1,2,3]`,
/// `Map {k => v}`, `Set {...}`, `[Function]`, `[Promise]`, `[Symbol]`.
pub(crate) fn write_value(f: &mut dyn Write, v: &Value) -> fmt::Result {
    match v {
        Value::Undefined => f.write_str("undefined"),
        Value::Null => f.write_str("null"),
        Value::Bool(b) => write!(f, "{b}"),
        Value::Integer(i) => write!(f, "{i}"),
        Value::Number(n) => write_number(f, *n),
        Value::BigInt(b) => write!(f, "{b}n"),
        Value::String(s) => write_json_string(f, s),
        Value::Date(ms) => match iso_date(*ms) {
            Some(s) => write!(f, "Date({s})"),
            None => f.write_str("Date(Invalid Date)"),
        },
        Value::Bytes(b) => {
            write!(f, "Uint8Array({}) [", b.len())?;
            for (i, x) in b.iter().enumerate() {
                if i > 0 {
                    f.write_char(',')?;
                }
                write!(f, "{x}")?;
            }
            f.write_char(']')
        }
        Value::Array(items) => {
            f.write_char('[')?;
            for (i, x) in items.iter().enumerate() {
                if i > 0 {
                    f.write_char(',')?;
                }
                write_value(f, x)?;
            }
            f.write_char(']')
        }
        Value::Object(props) => {
            f.write_char('{')?;
            for (i, (k, x)) in props.iter().enumerate() {
                if i > 0 {
                    f.write_char(',')?;
                }
                write_json_string(f, k)?;
                f.write_char(':')?;
                write_value(f, x)?;
            }
            f.write_char('}')
        }
        Value::Map(entries) => {
            f.write_str("Map {")?;
            for (i, (k, x)) in entries.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write_value(f, k)?;
                f.write_str(" => ")?;
                write_value(f, x)?;
            }
            f.write_char('}')
        }
        Value::Set(items) => {
            f.write_str("Set {")?;
            for (i, x) in items.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write_value(f, x)?;
            }
            f.write_char('}')
        }
        Value::Error(e) => write!(f, "[{}: {}]", e.name, e.message),
        Value::Handle(h) => match h.kind() {
            crate::HandleKind::Function => f.write_str("[Function]"),
            crate::HandleKind::Promise => f.write_str("[Promise]"),
            crate::HandleKind::Symbol => f.write_str("[Symbol]"),
            crate::HandleKind::Array => f.write_str("[Array]"),
            crate::HandleKind::Object => f.write_str("[Object]"),
        },
    }
}
