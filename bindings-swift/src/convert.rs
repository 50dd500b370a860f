//! `JsValue` ⇄ JS through core's walks: a `Sink` that builds `JsValue`s
//! while core walks a JS value, and a `Source` that core reads `JsValue`s
//! through while it creates JS values (no `polyracer::Value` between).

use std::sync::Arc;

use polyracer as pr;
use polyracer::transfer::{Halt, HostRef, JsStr, Key, Read, Sink, Source};

use crate::value::{JsHandle, JsMapEntry, JsProperty, JsValue};

enum Open {
    Array(Vec<JsValue>),
    Set(Vec<JsValue>),
    Object(Vec<JsProperty>, Option<String>),
    Map(Vec<JsMapEntry>, Option<JsValue>),
}

/// Builds a `JsValue` from core's walk.
#[derive(Default)]
pub(crate) struct JsValueSink {
    stack: Vec<Open>,
    done: Option<JsValue>,
    /// Key strings by `Key::id`.
    keys: Vec<String>,
}

/// The most items a container reserves room for before it sees them (a JS
/// length is not a promise of memory).
const PREALLOCATE_MAX: usize = 1 << 16;

impl JsValueSink {
    pub(crate) fn finish(self) -> JsValue {
        self.done.unwrap_or(JsValue::Undefined)
    }

    fn push(&mut self, v: JsValue) -> Result<(), Halt> {
        match self.stack.last_mut() {
            None => self.done = Some(v),
            Some(Open::Array(items) | Open::Set(items)) => items.push(v),
            Some(Open::Object(props, key)) => props.push(JsProperty { key: key.take().ok_or(Halt)?, value: v }),
            Some(Open::Map(entries, key)) => match key.take() {
                Some(k) => entries.push(JsMapEntry { key: k, value: v }),
                None => *key = Some(v),
            },
        }
        Ok(())
    }
}

pub(crate) fn handle_to_js(h: pr::JsHandle) -> JsValue {
    let kind = h.kind();
    let h = Arc::new(JsHandle(h));
    match kind {
        pr::HandleKind::Function => JsValue::Function(h),
        pr::HandleKind::Promise => JsValue::Promise(h),
        pr::HandleKind::Symbol => JsValue::Symbol(h),
        pr::HandleKind::Object => JsValue::ObjectHandle(h),
        pr::HandleKind::Array => JsValue::ArrayHandle(h),
    }
}

impl Sink for JsValueSink {
    fn undefined(&mut self) -> Result<(), Halt> {
        self.push(JsValue::Undefined)
    }
    fn null(&mut self) -> Result<(), Halt> {
        self.push(JsValue::Null)
    }
    fn bool(&mut self, b: bool) -> Result<(), Halt> {
        self.push(JsValue::Bool(b))
    }
    fn integer(&mut self, i: i64) -> Result<(), Halt> {
        self.push(JsValue::Integer(i))
    }
    fn number(&mut self, n: f64) -> Result<(), Halt> {
        self.push(JsValue::Number(n))
    }
    fn bigint(&mut self, b: pr::BigInt) -> Result<(), Halt> {
        self.push(JsValue::Bigint(b.to_string()))
    }
    fn string(&mut self, s: JsStr<'_>) -> Result<(), Halt> {
        self.push(JsValue::String(s.to_str().into_owned()))
    }
    fn date(&mut self, ms: f64) -> Result<(), Halt> {
        self.push(JsValue::Date(ms))
    }
    fn bytes(&mut self, b: &[u8]) -> Result<(), Halt> {
        self.push(JsValue::Bytes(pr::transfer::fresh_copy(b)))
    }
    fn error(&mut self, e: pr::ErrorValue) -> Result<(), Halt> {
        self.push(JsValue::Error { name: e.name, message: e.message, stack: e.stack })
    }
    fn handle(&mut self, h: pr::JsHandle) -> Result<(), Halt> {
        self.push(handle_to_js(h))
    }
    fn begin_array(&mut self, len: usize) -> Result<(), Halt> {
        self.stack.push(Open::Array(Vec::with_capacity(len.min(PREALLOCATE_MAX))));
        Ok(())
    }
    fn begin_object(&mut self, len: usize) -> Result<(), Halt> {
        self.stack.push(Open::Object(Vec::with_capacity(len.min(PREALLOCATE_MAX)), None));
        Ok(())
    }
    fn key(&mut self, key: Key<'_>) -> Result<(), Halt> {
        let text = match self.keys.get(key.id as usize) {
            Some(k) => k.clone(),
            None => {
                let s = key.text.to_str().into_owned();
                if key.id as usize == self.keys.len() {
                    self.keys.push(s.clone());
                }
                s
            }
        };
        match self.stack.last_mut() {
            Some(Open::Object(_, slot)) => {
                *slot = Some(text);
                Ok(())
            }
            _ => Err(Halt),
        }
    }
    fn begin_map(&mut self, len: usize) -> Result<(), Halt> {
        self.stack.push(Open::Map(Vec::with_capacity(len.min(PREALLOCATE_MAX)), None));
        Ok(())
    }
    fn begin_set(&mut self, len: usize) -> Result<(), Halt> {
        self.stack.push(Open::Set(Vec::with_capacity(len.min(PREALLOCATE_MAX))));
        Ok(())
    }
    fn end(&mut self) -> Result<(), Halt> {
        let v = match self.stack.pop().ok_or(Halt)? {
            Open::Array(items) => JsValue::Array(items),
            Open::Set(items) => JsValue::Set(items),
            Open::Object(props, _) => JsValue::Object(props),
            Open::Map(entries, _) => JsValue::Map(entries),
        };
        self.push(v)
    }
    fn enter(&mut self, walk: &mut dyn FnMut(&mut dyn Sink)) {
        // uniffi calls arrive on the caller's thread with nothing to take.
        walk(self)
    }
}

/// A kept core `Value` as a `JsValue` (awaited results, host function
/// arguments).
pub(crate) fn to_js(v: pr::Value) -> JsValue {
    let mut sink = JsValueSink::default();
    // Infallible: this sink never halts on a well-formed walk.
    let _ = v.emit(&mut sink);
    sink.finish()
}

/// Reads `JsValue`s for core's walk. Refs point into values the caller keeps
/// borrowed for the call; object keys carry the low tag bit.
#[derive(Default)]
pub(crate) struct JsValueSource;

const KEY_TAG: usize = 1;

impl JsValueSource {
    pub(crate) fn root(v: &JsValue) -> HostRef {
        HostRef(v as *const JsValue as usize)
    }
}

impl Source for JsValueSource {
    fn read(&mut self, v: HostRef) -> Result<Read<'_>, Halt> {
        if v.0 & KEY_TAG != 0 {
            // SAFETY: made by `entries` from a key the caller keeps borrowed.
            return Ok(Read::String(unsafe { &*((v.0 & !KEY_TAG) as *const String) }));
        }
        // SAFETY: made by `root`/`items`/`entries` from borrowed values.
        let v = unsafe { &*(v.0 as *const JsValue) };
        Ok(match v {
            JsValue::Undefined => Read::Undefined,
            JsValue::Null => Read::Null,
            JsValue::Bool(b) => Read::Bool(*b),
            // Beyond ±(2^53 − 1) core sends a BigInt rather than a rounded
            // number.
            JsValue::Integer(i) => Read::Integer(*i),
            JsValue::Number(n) => Read::Number(*n),
            JsValue::Bigint(digits) => match digits.trim().parse::<pr::BigInt>() {
                Ok(b) => Read::BigInt(Box::new(b)),
                Err(_) => Read::Unsupported(format!("{digits:?} is not a BigInt (decimal digits expected)")),
            },
            JsValue::String(s) => Read::String(s),
            JsValue::Date(ms) => Read::Date(*ms),
            JsValue::Bytes(b) => Read::Bytes(b),
            JsValue::Array(items) => Read::Array(items.len()),
            JsValue::Object(props) => Read::Object(props.len()),
            JsValue::Map(entries) => Read::Map(entries.len()),
            JsValue::Set(items) => Read::Set(items.len()),
            JsValue::Error { name, message, stack } => Read::Error(Box::new(pr::ErrorValue {
                name: name.clone(),
                message: message.clone(),
                stack: stack.clone(),
            })),
            JsValue::Function(h)
            | JsValue::Promise(h)
            | JsValue::Symbol(h)
            | JsValue::ObjectHandle(h)
            | JsValue::ArrayHandle(h) => Read::Handle(h.0.clone()),
        })
    }

    fn items(&mut self, v: HostRef, out: &mut Vec<HostRef>) -> Result<(), Halt> {
        // SAFETY: as in `read`.
        match unsafe { &*(v.0 as *const JsValue) } {
            JsValue::Array(items) | JsValue::Set(items) => {
                out.extend(items.iter().map(JsValueSource::root));
                Ok(())
            }
            _ => Err(Halt),
        }
    }

    fn entries(&mut self, v: HostRef, out: &mut Vec<(HostRef, HostRef)>) -> Result<(), Halt> {
        // SAFETY: as in `read`.
        match unsafe { &*(v.0 as *const JsValue) } {
            JsValue::Object(props) => {
                out.extend(
                    props
                        .iter()
                        .map(|p| (HostRef(&p.key as *const String as usize | KEY_TAG), JsValueSource::root(&p.value))),
                );
                Ok(())
            }
            JsValue::Map(entries) => {
                out.extend(entries.iter().map(|e| (JsValueSource::root(&e.key), JsValueSource::root(&e.value))));
                Ok(())
            }
            _ => Err(Halt),
        }
    }

    fn enter(&mut self, walk: &mut dyn FnMut(&mut dyn Source)) {
        walk(self)
    }
}

/// A `JsValue` as a core `Value` (what must be kept: a handle key, an async
/// call's arguments, a completion), with core's rules and errors.
pub(crate) fn from_js(v: JsValue) -> Result<pr::Value, pr::Error> {
    pr::transfer::collect(&mut JsValueSource, JsValueSource::root(&v))
}

pub(crate) fn from_js_all(items: Vec<JsValue>) -> Result<Vec<pr::Value>, pr::Error> {
    items.into_iter().map(from_js).collect()
}

/// Call arguments as refs into `items` (kept borrowed for the call).
pub(crate) fn args(items: &[JsValue]) -> Vec<pr::transfer::Arg> {
    items.iter().map(|v| pr::transfer::Arg::Host(JsValueSource::root(v))).collect()
}
