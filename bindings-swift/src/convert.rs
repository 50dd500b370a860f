//! Swift values (`JsValue`) to core values; the other way is infallible and
//! lives with the types in `value`.

use polyracer as pr;

use crate::error::PolyRacerError;
use crate::value::JsValue;

/// Host → JS.
pub(crate) fn from_js(v: JsValue) -> Result<pr::Value, PolyRacerError> {
    Ok(match v {
        JsValue::Undefined => pr::Value::Undefined,
        JsValue::Null => pr::Value::Null,
        JsValue::Bool(b) => pr::Value::Bool(b),
        // Beyond ±(2^53 − 1) the core sends a BigInt rather than a rounded number.
        JsValue::Integer(i) => pr::Value::from(i),
        JsValue::Number(n) => pr::Value::Number(n),
        JsValue::Bigint(digits) => pr::Value::BigInt(digits.trim().parse::<pr::BigInt>().map_err(|_| {
            PolyRacerError::Conversion { message: format!("{digits:?} is not a BigInt (decimal digits expected)") }
        })?),
        JsValue::String(s) => pr::Value::String(s),
        JsValue::Date(ms) => pr::Value::Date(ms),
        JsValue::Bytes(b) => pr::Value::Bytes(b),
        JsValue::Array(items) => pr::Value::Array(from_js_all(items)?),
        JsValue::Object(props) => pr::Value::Object(
            props.into_iter().map(|p| Ok((p.key, from_js(p.value)?))).collect::<Result<_, PolyRacerError>>()?,
        ),
        JsValue::Map(entries) => pr::Value::Map(
            entries
                .into_iter()
                .map(|e| Ok((from_js(e.key)?, from_js(e.value)?)))
                .collect::<Result<_, PolyRacerError>>()?,
        ),
        JsValue::Set(items) => pr::Value::Set(from_js_all(items)?),
        JsValue::Error { name, message, stack } => pr::Value::Error(Box::new(pr::ErrorValue { name, message, stack })),
        JsValue::Function(h)
        | JsValue::Promise(h)
        | JsValue::Symbol(h)
        | JsValue::ObjectHandle(h)
        | JsValue::ArrayHandle(h) => pr::Value::Handle(h.0.clone()),
    })
}

pub(crate) fn from_js_all(items: Vec<JsValue>) -> Result<Vec<pr::Value>, PolyRacerError> {
    items.into_iter().map(from_js).collect()
}
