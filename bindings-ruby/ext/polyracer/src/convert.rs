//! Ruby ⇄ `polyracer::Value` conversion.

use magnus::rb_sys::AsRawValue;
use magnus::value::{Opaque, ReprValue};
use magnus::{
    prelude::*, Error, Exception, Fixnum, Float, Integer, IntoValue, RArray, RBignum, RHash, RString, Ruby, Symbol,
    Time, TryConvert, Value,
};
use polyracer as pr;

use crate::classes::{conversion_error, ivar, JsRef, C_SET, E_JS, UNDEFINED};

/// A conversion failure, with the path to where it happened.
pub(crate) enum ConvFail {
    At(String, Vec<String>),
    Ruby(Error),
}

impl From<Error> for ConvFail {
    fn from(e: Error) -> Self {
        ConvFail::Ruby(e)
    }
}

pub(crate) fn at(e: ConvFail, seg: impl FnOnce() -> String) -> ConvFail {
    match e {
        ConvFail::At(m, mut path) => {
            path.push(seg());
            ConvFail::At(m, path)
        }
        other => other,
    }
}

pub(crate) fn from_rb(ruby: &Ruby, v: Value) -> Result<pr::Value, Error> {
    let mut seen = Vec::new();
    from_rb_at(ruby, v, 0, &mut seen).map_err(|e| match e {
        ConvFail::Ruby(e) => e,
        ConvFail::At(msg, path) => {
            let mut p = String::from("$");
            for seg in path.iter().rev() {
                p.push_str(seg);
            }
            conversion_error(ruby, format!("{msg} at {p}"))
        }
    })
}

pub(crate) fn rstring_to_string(s: RString) -> Result<String, Error> {
    // SAFETY: the bytes are copied before any Ruby code runs.
    let bytes = unsafe { s.as_slice() };
    match std::str::from_utf8(bytes) {
        Ok(t) => Ok(t.to_owned()),
        Err(_) => Ok(String::from_utf8_lossy(bytes).into_owned()),
    }
}

pub(crate) fn from_rb_at(ruby: &Ruby, v: Value, depth: usize, seen: &mut Vec<usize>) -> Result<pr::Value, ConvFail> {
    if v.is_nil() {
        return Ok(pr::Value::Null);
    }
    let raw = v.as_raw();
    if raw == ruby.qtrue().as_raw() {
        return Ok(pr::Value::Bool(true));
    }
    if raw == ruby.qfalse().as_raw() {
        return Ok(pr::Value::Bool(false));
    }
    if let Some(i) = Fixnum::from_value(v) {
        return Ok(pr::Value::from(i.to_i64()));
    }
    if let Some(f) = Float::from_value(v) {
        return Ok(pr::Value::Number(f.to_f64()));
    }
    if let Some(s) = RString::from_value(v) {
        let idx = s.enc_get();
        if idx == ruby.ascii8bit_encindex() {
            // SAFETY: copied immediately.
            return Ok(pr::Value::Bytes(unsafe { s.as_slice() }.to_vec()));
        }
        if idx == ruby.utf8_encindex() || idx == ruby.usascii_encindex() {
            return Ok(pr::Value::String(rstring_to_string(s)?));
        }
        let utf8 = s.conv_enc(ruby.utf8_encoding())?;
        return Ok(pr::Value::String(rstring_to_string(utf8)?));
    }
    if let Some(sym) = Symbol::from_value(v) {
        return Ok(pr::Value::String(sym.name()?.into_owned()));
    }
    if let Some(b) = RBignum::from_value(v) {
        if let Ok(i) = b.to_i64() {
            return Ok(pr::Value::from(i));
        }
        let s: RString = b.funcall("to_s", ())?;
        let text = rstring_to_string(s)?;
        return text
            .parse::<pr::BigInt>()
            .map(pr::Value::BigInt)
            .map_err(|e| ConvFail::At(format!("bad Integer: {e}"), Vec::new()));
    }
    if let Ok(h) = <&JsRef>::try_convert(v) {
        return Ok(pr::Value::Handle(h.h.clone()));
    }
    if let Some(t) = Time::from_value(v) {
        let ts = t.timespec()?;
        return Ok(pr::Value::Date(ts.tv_sec as f64 * 1000.0 + (ts.tv_nsec as f64 / 1e6).floor()));
    }
    if raw == ruby.get_inner(&UNDEFINED).as_raw() {
        return Ok(pr::Value::Undefined);
    }
    let is_array = RArray::from_value(v);
    let is_hash = RHash::from_value(v);
    let is_set = is_array.is_none() && is_hash.is_none() && v.is_kind_of(ruby.get_inner(&C_SET));
    if is_array.is_none() && is_hash.is_none() && !is_set {
        return Err(ConvFail::At(
            format!("cannot convert a Ruby {} to JavaScript", unsafe { v.classname() }),
            Vec::new(),
        ));
    }
    if depth >= pr::MAX_DEPTH {
        return Err(ConvFail::At(format!("nesting deeper than {} levels", pr::MAX_DEPTH), Vec::new()));
    }
    // SAFETY: plain stack-limit query.
    if unsafe { rb_sys::ruby_stack_check() } != 0 {
        return Err(ConvFail::At("nesting too deep for this thread's stack".into(), Vec::new()));
    }
    if seen.contains(&(raw as usize)) {
        return Err(ConvFail::At("cyclic reference".into(), Vec::new()));
    }
    seen.push(raw as usize);
    let out = if let Some(a) = is_array {
        array_from_rb(ruby, a, depth, seen)
    } else if let Some(h) = is_hash {
        hash_from_rb(ruby, h, depth, seen)
    } else {
        let items: RArray = v.funcall("to_a", ())?;
        array_from_rb(ruby, items, depth, seen).map(|v| match v {
            pr::Value::Array(items) => pr::Value::Set(items),
            other => other,
        })
    };
    seen.pop();
    out
}

pub(crate) fn array_from_rb(
    ruby: &Ruby,
    a: RArray,
    depth: usize,
    seen: &mut Vec<usize>,
) -> Result<pr::Value, ConvFail> {
    let mut items = Vec::with_capacity(a.len());
    let mut i = 0;
    // Index by index: the array may change under us only through our own
    // conversions, which never call Ruby code that mutates it.
    while i < a.len() {
        let x: Value = a.entry(i as isize)?;
        items.push(from_rb_at(ruby, x, depth + 1, seen).map_err(|e| at(e, || format!("[{i}]")))?);
        i += 1;
    }
    Ok(pr::Value::Array(items))
}

pub(crate) fn hash_from_rb(ruby: &Ruby, h: RHash, depth: usize, seen: &mut Vec<usize>) -> Result<pr::Value, ConvFail> {
    let mut props: Vec<(String, pr::Value)> = Vec::with_capacity(h.len());
    let mut entries: Vec<(pr::Value, pr::Value)> = Vec::new();
    let mut plain = true;
    let mut fail: Option<ConvFail> = None;
    let r = h.foreach(|k: Value, x: Value| {
        let key = if let Some(s) = RString::from_value(k) {
            Some(rstring_to_string(s)?)
        } else if let Some(sym) = Symbol::from_value(k) {
            Some(sym.name()?.into_owned())
        } else {
            None
        };
        let label = || match &key {
            Some(k) => format!(".{k}"),
            None => "[key]".to_string(),
        };
        let val = match from_rb_at(ruby, x, depth + 1, seen) {
            Ok(v) => v,
            Err(e) => {
                fail = Some(at(e, label));
                return Ok(magnus::r_hash::ForEach::Stop);
            }
        };
        match key {
            Some(k) if plain => props.push((k, val)),
            _ => {
                if plain {
                    // A non-string key: the whole Hash becomes a Map.
                    plain = false;
                    entries.extend(props.drain(..).map(|(k, v)| (pr::Value::String(k), v)));
                }
                let kv = match from_rb_at(ruby, k, depth + 1, seen) {
                    Ok(v) => v,
                    Err(e) => {
                        fail = Some(at(e, || "[key]".into()));
                        return Ok(magnus::r_hash::ForEach::Stop);
                    }
                };
                entries.push((kv, val));
            }
        }
        Ok(magnus::r_hash::ForEach::Continue)
    });
    if let Some(f) = fail {
        return Err(f);
    }
    r?;
    Ok(if plain { pr::Value::Object(props) } else { pr::Value::Map(entries) })
}

pub(crate) fn args_from_rb(ruby: &Ruby, args: &[Value]) -> Result<Vec<pr::Value>, Error> {
    args.iter().map(|a| from_rb(ruby, *a)).collect()
}

/// `owner` is the Ruby `Polyracer::Context` that new handles keep alive.
pub(crate) fn to_rb(ruby: &Ruby, owner: Value, v: pr::Value) -> Result<Value, Error> {
    let container = matches!(v, pr::Value::Array(_) | pr::Value::Object(_) | pr::Value::Map(_) | pr::Value::Set(_));
    // SAFETY: plain stack-limit query. Core caps nesting at MAX_DEPTH, but a
    // Ruby thread's stack can be smaller than that needs.
    if container && unsafe { rb_sys::ruby_stack_check() } != 0 {
        return Err(conversion_error(ruby, "nesting too deep for this thread's stack"));
    }
    Ok(match v {
        pr::Value::Undefined | pr::Value::Null => ruby.qnil().as_value(),
        pr::Value::Bool(b) => b.into_value_with(ruby),
        pr::Value::Integer(i) => ruby.integer_from_i64(i).as_value(),
        pr::Value::Number(n) => ruby.float_from_f64(n).as_value(),
        pr::Value::BigInt(b) => match i64::try_from(&b) {
            Ok(i) => ruby.integer_from_i64(i).as_value(),
            Err(_) => {
                let s = ruby.str_new(&b.to_string());
                let i: Integer = s.funcall("to_i", ())?;
                i.as_value()
            }
        },
        pr::Value::String(s) => ruby.str_new(&s).as_value(),
        pr::Value::Date(ms) => {
            if !ms.is_finite() {
                return Err(conversion_error(ruby, "an Invalid Date has no Ruby Time"));
            }
            let secs = (ms / 1000.0).floor();
            let nanos = ((ms - secs * 1000.0) * 1e6).round();
            let t = ruby.time_nano_new(secs as i64, nanos as i64)?;
            t.funcall("utc", ())?
        }
        pr::Value::Bytes(b) => ruby.enc_str_new(&b, ruby.ascii8bit_encoding()).as_value(),
        pr::Value::Array(items) => {
            let a = ruby.ary_new_capa(items.len());
            for item in items {
                a.push(to_rb(ruby, owner, item)?)?;
            }
            a.as_value()
        }
        pr::Value::Object(props) => {
            let h = ruby.hash_new();
            for (k, x) in props {
                h.aset(ruby.str_new(&k), to_rb(ruby, owner, x)?)?;
            }
            h.as_value()
        }
        pr::Value::Map(entries) => {
            let h = ruby.hash_new();
            for (k, x) in entries {
                h.aset(to_rb(ruby, owner, k)?, to_rb(ruby, owner, x)?)?;
            }
            h.as_value()
        }
        pr::Value::Set(items) => {
            let a = ruby.ary_new_capa(items.len());
            for item in items {
                a.push(to_rb(ruby, owner, item)?)?;
            }
            ruby.get_inner(&C_SET).new_instance((a,))?
        }
        pr::Value::Error(e) => {
            let exc: Exception = ruby.get_inner(&E_JS).new_instance((ruby.str_new(&e.message),))?;
            ivar(exc.as_value(), c"@js_name", ruby.str_new(&e.name).as_value());
            ivar(exc.as_value(), c"@js_stack", ruby.str_new(&e.stack).as_value());
            exc.as_value()
        }
        pr::Value::Handle(h) => ruby.obj_wrap(JsRef { h, owner: Opaque::from(owner) }).as_value(),
    })
}
