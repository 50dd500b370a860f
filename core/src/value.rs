//! The host-side value model (design brief §3).

use std::fmt;
use std::sync::Arc;

pub use num_bigint::BigInt;

use crate::handle::JsHandle;

/// Integral JS numbers within this magnitude convert to [`Value::Integer`].
pub const MAX_SAFE_INTEGER: i64 = (1i64 << 53) - 1;

/// A copy of a JS value, or a [`JsHandle`] to a JS value that stays in the
/// context.
///
/// Conversion rules, JS → host:
/// - a number that is integral, not `-0`, and within ±(2^53 − 1) becomes
///   [`Value::Integer`]; every other number becomes [`Value::Number`];
/// - strings are UTF-8: lone UTF-16 surrogates, which UTF-8 cannot hold, are
///   replaced by U+FFFD;
/// - `ArrayBuffer`, `SharedArrayBuffer`, typed arrays and `DataView` become
///   [`Value::Bytes`] (the bytes of the view);
/// - plain objects keep their own enumerable string keys in JS order;
/// - functions, promises, symbols and proxies always become handles.
///
/// Host → JS: [`Value::Integer`] outside ±(2^53 − 1) becomes a BigInt,
/// [`Value::Bytes`] becomes a `Uint8Array`, [`Value::Error`] an `Error`.
#[derive(Clone, Debug, Default)]
pub enum Value {
    #[default]
    Undefined,
    Null,
    Bool(bool),
    Integer(i64),
    Number(f64),
    BigInt(BigInt),
    String(String),
    /// Milliseconds since the Unix epoch (UTC), as JS `Date` holds it.
    Date(f64),
    Bytes(Vec<u8>),
    Array(Vec<Value>),
    /// Own enumerable string-keyed properties, in JS order.
    Object(Vec<(String, Value)>),
    Map(Vec<(Value, Value)>),
    Set(Vec<Value>),
    Error(Box<ErrorValue>),
    Handle(JsHandle),
}

/// A JS `Error` object copied to the host.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct ErrorValue {
    pub name: String,
    pub message: String,
    pub stack: String,
}

impl Value {
    /// The JS `typeof`-like name of this value's kind, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Undefined => "undefined",
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Integer(_) | Value::Number(_) => "number",
            Value::BigInt(_) => "bigint",
            Value::String(_) => "string",
            Value::Date(_) => "Date",
            Value::Bytes(_) => "Uint8Array",
            Value::Array(_) => "Array",
            Value::Object(_) => "Object",
            Value::Map(_) => "Map",
            Value::Set(_) => "Set",
            Value::Error(_) => "Error",
            Value::Handle(h) => h.kind().name(),
        }
    }

    pub fn is_nullish(&self) -> bool {
        matches!(self, Value::Undefined | Value::Null)
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Integer(i) => Some(*i as f64),
            Value::Number(n) => Some(*n),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Integer(i) => Some(*i),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    pub fn as_handle(&self) -> Option<&JsHandle> {
        match self {
            Value::Handle(h) => Some(h),
            _ => None,
        }
    }

    /// Looks up a key of an [`Value::Object`] copy.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Object(props) => props.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// Builds an integer value, switching to BigInt beyond ±(2^53 − 1) so the
    /// JS side never sees a rounded number.
    pub fn from_i128(i: i128) -> Value {
        if i.unsigned_abs() <= MAX_SAFE_INTEGER as u128 {
            Value::Integer(i as i64)
        } else {
            Value::BigInt(BigInt::from(i))
        }
    }
}

/// Structural equality; handles compare by identity of the JS reference they
/// hold, numbers compare by value across `Integer`/`Number`.
impl PartialEq for Value {
    fn eq(&self, other: &Self) -> bool {
        use Value::*;
        match (self, other) {
            (Undefined, Undefined) | (Null, Null) => true,
            (Bool(a), Bool(b)) => a == b,
            (Integer(a), Integer(b)) => a == b,
            (Integer(_) | Number(_), Integer(_) | Number(_)) => self.as_f64() == other.as_f64(),
            (BigInt(a), BigInt(b)) => a == b,
            (String(a), String(b)) => a == b,
            (Date(a), Date(b)) => a == b,
            (Bytes(a), Bytes(b)) => a == b,
            (Array(a), Array(b)) | (Set(a), Set(b)) => a == b,
            (Object(a), Object(b)) => a == b,
            (Map(a), Map(b)) => a == b,
            (Error(a), Error(b)) => a == b,
            (Handle(a), Handle(b)) => a.same_handle(b),
            _ => false,
        }
    }
}

macro_rules! from_int {
    ($($t:ty),*) => {$(
        impl From<$t> for Value {
            fn from(v: $t) -> Value { Value::from_i128(v as i128) }
        }
    )*};
}
from_int!(i8, i16, i32, i64, isize, u8, u16, u32, u64, usize);

impl From<f64> for Value {
    fn from(v: f64) -> Value {
        Value::Number(v)
    }
}
impl From<f32> for Value {
    fn from(v: f32) -> Value {
        Value::Number(v as f64)
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Value {
        Value::Bool(v)
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Value {
        Value::String(v.to_owned())
    }
}
impl From<String> for Value {
    fn from(v: String) -> Value {
        Value::String(v)
    }
}
impl From<BigInt> for Value {
    fn from(v: BigInt) -> Value {
        Value::BigInt(v)
    }
}
impl From<JsHandle> for Value {
    fn from(v: JsHandle) -> Value {
        Value::Handle(v)
    }
}
impl<T: Into<Value>> From<Vec<T>> for Value {
    fn from(v: Vec<T>) -> Value {
        Value::Array(v.into_iter().map(Into::into).collect())
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Value {
        v.map_or(Value::Null, Into::into)
    }
}
impl From<()> for Value {
    fn from(_: ()) -> Value {
        Value::Undefined
    }
}

/// Renders the value the way the CLI prints it: JSON where JSON can say it,
/// and a readable JS-like form for the rest (`undefined`, `12n`,
/// `Date(2020-01-01T00:00:00.000Z)`, `Map {...}`, `[Function]`).
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        crate::display::write_value(f, self)
    }
}

/// A host error raised inside an exposed function. It becomes a JS exception;
/// if JS does not catch it, it comes back as the [`crate::Error::Js`] cause.
#[derive(Clone)]
pub struct HostError {
    /// JS error class to throw (`"Error"`, `"TypeError"`, `"RangeError"`, ...).
    pub name: String,
    pub message: String,
    /// The binding's original exception object, returned as the cause.
    pub payload: Option<Arc<dyn std::any::Any + Send + Sync>>,
}

impl HostError {
    pub fn new(message: impl Into<String>) -> Self {
        HostError { name: "Error".into(), message: message.into(), payload: None }
    }

    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    pub fn with_payload(mut self, payload: Arc<dyn std::any::Any + Send + Sync>) -> Self {
        self.payload = Some(payload);
        self
    }
}

impl fmt::Debug for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostError")
            .field("name", &self.name)
            .field("message", &self.message)
            .field("payload", &self.payload.is_some())
            .finish()
    }
}

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.name, self.message)
    }
}

impl std::error::Error for HostError {}

impl From<String> for HostError {
    fn from(e: String) -> Self {
        HostError::new(e)
    }
}

impl From<&str> for HostError {
    fn from(e: &str) -> Self {
        HostError::new(e)
    }
}

/// Lets a host function use `?` on calls back into JS: the JS error's name and
/// message are rethrown.
impl From<crate::Error> for HostError {
    fn from(e: crate::Error) -> Self {
        match e {
            crate::Error::Js(ex) | crate::Error::Parse(ex) => {
                HostError { name: ex.name.clone(), message: ex.message.clone(), payload: ex.cause.clone() }
            }
            other => HostError::new(other.to_string()),
        }
    }
}
