//! [`Value`] as a sink, as a source, and replayed into a sink.

use super::to_js::{ValueTarget, Walk};
use super::{Halt, HostRef, JsStr, Key, Read, Sink, Source};
use crate::convert::ConvError;
use crate::error::Result;
use crate::handle::JsHandle;
use crate::value::{BigInt, ErrorValue, Value};

/// A [`Sink`] that builds a [`Value`] (what the Rust API returns).
#[derive(Default)]
pub struct ValueSink {
    /// Open containers, innermost last.
    stack: Vec<Open>,
    done: Option<Value>,
    /// Key strings by [`Key::id`].
    keys: Vec<Box<str>>,
}

/// The most items a container reserves room for before it sees them.
const PREALLOCATE_MAX: usize = 1 << 16;

enum Open {
    Array(Vec<Value>),
    Set(Vec<Value>),
    /// With the key of the property whose value comes next.
    Object(Vec<(String, Value)>, Option<String>),
    /// With the key of the entry whose value comes next.
    Map(Vec<(Value, Value)>, Option<Value>),
}

impl ValueSink {
    pub fn new() -> ValueSink {
        ValueSink::default()
    }

    /// The value built (`undefined` if nothing was).
    pub fn finish(self) -> Value {
        self.done.unwrap_or_default()
    }

    fn push(&mut self, v: Value) -> Result<(), Halt> {
        match self.stack.last_mut() {
            None => self.done = Some(v),
            Some(Open::Array(items) | Open::Set(items)) => items.push(v),
            Some(Open::Object(props, key)) => props.push((key.take().ok_or(Halt)?, v)),
            Some(Open::Map(entries, key)) => match key.take() {
                Some(k) => entries.push((k, v)),
                None => *key = Some(v),
            },
        }
        Ok(())
    }
}

impl Sink for ValueSink {
    fn undefined(&mut self) -> Result<(), Halt> {
        self.push(Value::Undefined)
    }
    fn null(&mut self) -> Result<(), Halt> {
        self.push(Value::Null)
    }
    fn bool(&mut self, b: bool) -> Result<(), Halt> {
        self.push(Value::Bool(b))
    }
    fn integer(&mut self, i: i64) -> Result<(), Halt> {
        self.push(Value::Integer(i))
    }
    fn number(&mut self, n: f64) -> Result<(), Halt> {
        self.push(Value::Number(n))
    }
    fn bigint(&mut self, b: BigInt) -> Result<(), Halt> {
        self.push(Value::BigInt(b))
    }
    fn string(&mut self, s: JsStr<'_>) -> Result<(), Halt> {
        self.push(Value::String(s.to_str().into_owned()))
    }
    fn date(&mut self, ms: f64) -> Result<(), Halt> {
        self.push(Value::Date(ms))
    }
    fn bytes(&mut self, b: &[u8]) -> Result<(), Halt> {
        self.push(Value::Bytes(crate::transfer::fresh_copy(b)))
    }
    fn error(&mut self, e: ErrorValue) -> Result<(), Halt> {
        self.push(Value::Error(Box::new(e)))
    }
    fn handle(&mut self, h: JsHandle) -> Result<(), Halt> {
        self.push(Value::Handle(h))
    }
    fn begin_array(&mut self, len: usize) -> Result<(), Halt> {
        // A JS length is not a promise of memory (`new Array(2 ** 32 - 1)`
        // is tiny in V8): reserve a bounded amount and grow.
        self.stack.push(Open::Array(Vec::with_capacity(len.min(PREALLOCATE_MAX))));
        Ok(())
    }
    fn begin_object(&mut self, len: usize) -> Result<(), Halt> {
        self.stack.push(Open::Object(Vec::with_capacity(len.min(PREALLOCATE_MAX)), None));
        Ok(())
    }
    fn key(&mut self, key: Key<'_>) -> Result<(), Halt> {
        let text = match self.keys.get(key.id as usize) {
            Some(k) => String::from(&**k),
            None => {
                let s = key.text.to_str().into_owned();
                if key.id as usize == self.keys.len() {
                    self.keys.push(s.as_str().into());
                }
                s
            }
        };
        match self.stack.last_mut() {
            Some(Open::Object(_, slot)) => *slot = Some(text),
            _ => return Err(Halt),
        }
        Ok(())
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
            Open::Array(items) => Value::Array(items),
            Open::Set(items) => Value::Set(items),
            Open::Object(props, _) => Value::Object(props),
            Open::Map(entries, _) => Value::Map(entries),
        };
        self.push(v)
    }
    fn enter(&mut self, walk: &mut dyn FnMut(&mut dyn Sink)) {
        walk(self)
    }
}

/// A [`Value`] read as a [`Source`]: how Rust callers' arguments reach
/// core's walk. Refs point into values the caller keeps borrowed for the
/// call; object keys carry the low tag bit.
#[derive(Default)]
pub struct ValueSource;

const KEY_TAG: usize = 1;

impl ValueSource {
    pub fn new() -> ValueSource {
        ValueSource
    }

    /// The ref of a value, valid while `v` is borrowed.
    pub fn root(&mut self, v: &Value) -> HostRef {
        HostRef(v as *const Value as usize)
    }
}

impl Source for ValueSource {
    fn read(&mut self, v: HostRef) -> Result<Read<'_>, Halt> {
        if v.0 & KEY_TAG != 0 {
            // SAFETY: made by `entries` from a key the caller keeps
            // borrowed for the call.
            let k = unsafe { &*((v.0 & !KEY_TAG) as *const String) };
            return Ok(Read::String(k));
        }
        // SAFETY: made by `root` or `items`/`entries` from values the
        // caller keeps borrowed for the call.
        let v = unsafe { &*(v.0 as *const Value) };
        Ok(match v {
            Value::Undefined => Read::Undefined,
            Value::Null => Read::Null,
            Value::Bool(b) => Read::Bool(*b),
            Value::Integer(i) => Read::Integer(*i),
            Value::Number(n) => Read::Number(*n),
            Value::BigInt(b) => Read::BigInt(Box::new(b.clone())),
            Value::String(s) => Read::String(s),
            Value::Date(ms) => Read::Date(*ms),
            Value::Bytes(b) => Read::Bytes(b),
            Value::Array(items) => Read::Array(items.len()),
            Value::Object(props) => Read::Object(props.len()),
            Value::Map(entries) => Read::Map(entries.len()),
            Value::Set(items) => Read::Set(items.len()),
            Value::Error(e) => Read::Error(e.clone()),
            Value::Handle(h) => Read::Handle(h.clone()),
        })
    }

    fn items(&mut self, v: HostRef, out: &mut Vec<HostRef>) -> Result<(), Halt> {
        // SAFETY: as in `read`.
        match unsafe { &*(v.0 as *const Value) } {
            Value::Array(items) | Value::Set(items) => {
                out.extend(items.iter().map(|x| HostRef(x as *const Value as usize)));
                Ok(())
            }
            _ => Err(Halt),
        }
    }

    fn entries(&mut self, v: HostRef, out: &mut Vec<(HostRef, HostRef)>) -> Result<(), Halt> {
        // SAFETY: as in `read`.
        match unsafe { &*(v.0 as *const Value) } {
            Value::Object(props) => {
                out.extend(props.iter().map(|(k, x)| {
                    (HostRef(k as *const String as usize | KEY_TAG), HostRef(x as *const Value as usize))
                }));
                Ok(())
            }
            Value::Map(entries) => {
                out.extend(
                    entries
                        .iter()
                        .map(|(k, x)| (HostRef(k as *const Value as usize), HostRef(x as *const Value as usize))),
                );
                Ok(())
            }
            _ => Err(Halt),
        }
    }

    fn enter(&mut self, walk: &mut dyn FnMut(&mut dyn Source)) {
        walk(self)
    }
}

/// Reads a host value through `source` into a [`Value`] (for what must be
/// kept past the call: an async completion, a value for another thread),
/// with the same rules as a conversion to JS.
pub fn collect(source: &mut dyn Source, root: HostRef) -> Result<Value> {
    let mut result = None;
    source.enter(&mut |src| result = Some(Walk::new().value(src, &mut ValueTarget, root, 0)));
    result
        .unwrap_or_else(|| Err(ConvError::new("the source did not run the conversion")))
        .map_err(ConvError::into_error)
}

impl Value {
    /// Replays this value into `sink`, as core's walk over the JS value
    /// would have (for values that were kept, such as an awaited result).
    pub fn emit(&self, sink: &mut dyn Sink) -> Result<(), Halt> {
        let container = matches!(self, Value::Array(_) | Value::Object(_) | Value::Map(_) | Value::Set(_))
            || matches!(self, Value::Error(_) | Value::Bytes(_))
            || matches!(self, Value::String(s) if s.len() > super::ENTER_STRING_LEN);
        if !container {
            return emit_value(self, sink, &mut KeyIds::default());
        }
        let mut result = Ok(());
        sink.enter(&mut |s| result = emit_value(self, s, &mut KeyIds::default()));
        result
    }
}

#[derive(Default)]
struct KeyIds(rustc_hash::FxHashMap<String, u32>);

fn emit_value(v: &Value, sink: &mut dyn Sink, keys: &mut KeyIds) -> Result<(), Halt> {
    match v {
        Value::Undefined => sink.undefined(),
        Value::Null => sink.null(),
        Value::Bool(b) => sink.bool(*b),
        Value::Integer(i) => sink.integer(*i),
        Value::Number(n) => sink.number(*n),
        Value::BigInt(b) => sink.bigint(b.clone()),
        Value::String(s) => emit_str(s, sink, |s, t| s.string(t)),
        Value::Date(ms) => sink.date(*ms),
        Value::Bytes(b) => sink.bytes(b),
        Value::Error(e) => sink.error((**e).clone()),
        Value::Handle(h) => sink.handle(h.clone()),
        Value::Array(items) | Value::Set(items) => {
            if matches!(v, Value::Set(_)) {
                sink.begin_set(items.len())?;
            } else {
                sink.begin_array(items.len())?;
            }
            for item in items {
                emit_value(item, sink, keys)?;
            }
            sink.end()
        }
        Value::Object(props) => {
            sink.begin_object(props.len())?;
            for (k, x) in props {
                let next = keys.0.len() as u32;
                let id = *keys.0.entry(k.clone()).or_insert(next);
                emit_str(k, sink, |s, text| s.key(Key { id, text }))?;
                emit_value(x, sink, keys)?;
            }
            sink.end()
        }
        Value::Map(entries) => {
            sink.begin_map(entries.len())?;
            for (k, x) in entries {
                emit_value(k, sink, keys)?;
                emit_value(x, sink, keys)?;
            }
            sink.end()
        }
    }
}

/// Hands a Rust string to a sink as a [`JsStr`] (Latin-1 when it is
/// ASCII, as V8 would hold it; UTF-16 otherwise).
fn emit_str(
    s: &str,
    sink: &mut dyn Sink,
    f: impl FnOnce(&mut dyn Sink, JsStr) -> Result<(), Halt>,
) -> Result<(), Halt> {
    if s.is_ascii() {
        f(sink, JsStr::Latin1(s.as_bytes()))
    } else {
        let units: Vec<u16> = s.encode_utf16().collect();
        f(sink, JsStr::Utf16(&units))
    }
}
