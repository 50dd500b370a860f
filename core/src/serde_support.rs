//! serde support for Rust users: `call_as::<T>()`, arguments from `Serialize`.
//!
//! Conversion goes through `serde_json::Value`, which is enough for the
//! data serde types describe. Mapping: `Value::Bytes` ⇄ array of numbers,
//! `Value::Date` → ISO string, `Value::BigInt` → number when it fits `i64`/`u64`,
//! else a decimal string; `Map` → object when every key is a string,
//! else an array of pairs; `Set` → array; handles cannot be deserialised.

use serde::de::DeserializeOwned;
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};

use crate::error::{Error, Result};
use crate::value::{BigInt, Value};

/// Converts any `Serialize` value to a [`Value`].
pub fn to_value<T: Serialize + ?Sized>(v: &T) -> Result<Value> {
    let json = serde_json::to_value(v).map_err(|e| Error::Conversion(e.to_string()))?;
    Ok(Value::from(json))
}

/// Converts a [`Value`] into any `DeserializeOwned` type.
pub fn from_value<T: DeserializeOwned>(v: Value) -> Result<T> {
    let json = serde_json::to_value(&v).map_err(|e| Error::Conversion(e.to_string()))?;
    serde_json::from_value(json).map_err(|e| Error::Conversion(e.to_string()))
}

impl From<serde_json::Value> for Value {
    fn from(j: serde_json::Value) -> Value {
        match j {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(b),
            serde_json::Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Value::from(i)
                } else if let Some(u) = n.as_u64() {
                    Value::from(u)
                } else {
                    Value::Number(n.as_f64().unwrap_or(f64::NAN))
                }
            }
            serde_json::Value::String(s) => Value::String(s),
            serde_json::Value::Array(a) => Value::Array(a.into_iter().map(Value::from).collect()),
            serde_json::Value::Object(o) => Value::Object(o.into_iter().map(|(k, v)| (k, Value::from(v))).collect()),
        }
    }
}

fn serialize_bigint<S: Serializer>(b: &BigInt, s: S) -> Result<S::Ok, S::Error> {
    if let Ok(i) = i64::try_from(b) {
        s.serialize_i64(i)
    } else if let Ok(u) = u64::try_from(b) {
        s.serialize_u64(u)
    } else {
        s.serialize_str(&b.to_string())
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Undefined | Value::Null => s.serialize_unit(),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Integer(i) => s.serialize_i64(*i),
            Value::Number(n) => s.serialize_f64(*n),
            Value::BigInt(b) => serialize_bigint(b, s),
            Value::String(x) => s.serialize_str(x),
            Value::Date(ms) => match crate::display::iso_date(*ms) {
                Some(iso) => s.serialize_str(&iso),
                None => s.serialize_unit(),
            },
            Value::Bytes(b) => {
                let mut seq = s.serialize_seq(Some(b.len()))?;
                for x in b {
                    seq.serialize_element(x)?;
                }
                seq.end()
            }
            Value::Array(items) | Value::Set(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for x in items {
                    seq.serialize_element(x)?;
                }
                seq.end()
            }
            Value::Object(props) => {
                let mut map = s.serialize_map(Some(props.len()))?;
                for (k, v) in props {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
            Value::Map(entries) => {
                if entries.iter().all(|(k, _)| matches!(k, Value::String(_))) {
                    let mut map = s.serialize_map(Some(entries.len()))?;
                    for (k, v) in entries {
                        map.serialize_entry(k, v)?;
                    }
                    map.end()
                } else {
                    let mut seq = s.serialize_seq(Some(entries.len()))?;
                    for pair in entries {
                        seq.serialize_element(&[&pair.0, &pair.1])?;
                    }
                    seq.end()
                }
            }
            Value::Error(e) => {
                let mut map = s.serialize_map(Some(3))?;
                map.serialize_entry("name", &e.name)?;
                map.serialize_entry("message", &e.message)?;
                map.serialize_entry("stack", &e.stack)?;
                map.end()
            }
            Value::Handle(h) => Err(serde::ser::Error::custom(format!(
                "a {} handle cannot be serialised; copy it with to_value() first",
                h.kind().name()
            ))),
        }
    }
}
