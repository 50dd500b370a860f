//! Host → JS → host values: arbitrary nested `Value`s with extreme numbers,
//! any Unicode, bytes, maps with colliding keys and nesting around
//! `MAX_DEPTH`, passed in through `set_global`, `call` and a host callback,
//! and read back (as copies and through handles). Where the conversion rules
//! in `core/src/value.rs` say a value must survive, it must come back equal
//! to what those rules predict (`expected`); where they say it cannot go in
//! (BigInt beyond V8's limit, nesting beyond `MAX_DEPTH`), the error must be
//! a `Conversion` error naming that reason.
#![no_main]

use std::sync::OnceLock;

use arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use polyracer::{BigInt, Context, ContextOptions, Error, EvalOptions, Value, MAX_DEPTH, MAX_SAFE_INTEGER};

/// Nesting of ordinary generated values; deep chains are a separate case.
const MAX_GEN_DEPTH: u32 = 5;
const MAX_ITEMS: usize = 6;
/// V8's `BigInt::kMaxLengthBits`: larger BigInts cannot be created.
const V8_BIGINT_MAX_BITS: u64 = 1 << 30;

fn context() -> &'static Context {
    // One context for all iterations: creating one costs milliseconds, and
    // conversion does not depend on earlier globals.
    static CTX: OnceLock<Context> = OnceLock::new();
    CTX.get_or_init(|| {
        let ctx = Context::new(ContextOptions::default()).expect("context");
        ctx.expose("hostEcho", |_ctx, mut args| {
            Ok(if args.is_empty() { Value::Undefined } else { args.swap_remove(0) })
        })
        .expect("expose");
        ctx
    })
}

const NUMBERS: &[f64] = &[
    f64::NAN,
    -0.0,
    0.0,
    f64::INFINITY,
    f64::NEG_INFINITY,
    f64::MIN_POSITIVE,
    5e-324,
    -5e-324,
    f64::MAX,
    f64::MIN,
    9007199254740991.0,
    9007199254740992.0,
    9007199254740993.0,
    -9007199254740991.0,
    -9007199254740992.0,
    2147483647.0,
    2147483648.0,
    -2147483648.0,
    -2147483649.0,
    4294967295.0,
    0.1,
    1e21,
    -1e-7,
    0.5,
    -0.5,
];

const INTEGERS: &[i64] = &[
    0,
    1,
    -1,
    i64::MIN,
    i64::MAX,
    MAX_SAFE_INTEGER,
    -MAX_SAFE_INTEGER,
    MAX_SAFE_INTEGER + 1,
    -MAX_SAFE_INTEGER - 1,
    i32::MAX as i64,
    i32::MAX as i64 + 1,
    i32::MIN as i64,
    i32::MIN as i64 - 1,
    u32::MAX as i64,
];

const DATES: &[f64] =
    &[0.0, -0.0, 0.5, -0.5, 8.64e15, -8.64e15, 8.64e15 + 1.0, -8.64e15 - 1.0, f64::NAN, f64::INFINITY, 1e300];

const STRINGS: &[&str] = &[
    "",
    "\0",
    "__proto__",
    "constructor",
    "toString",
    "length",
    "0",
    "1",
    "01",
    "-0",
    "-1",
    "4294967294",
    "4294967295",
    "4294967296",
    "1e3",
    "NaN",
    "\u{FEFF}",
    "\u{FFFD}",
    "\u{10FFFF}",
    "e\u{301}",
    "👨\u{200D}👩\u{200D}👧",
    "\u{2028}\u{2029}",
    "a\0b",
];

fn gen_string(u: &mut Unstructured) -> Result<String> {
    if u.ratio(1, 2)? {
        Ok((*u.choose(STRINGS)?).to_owned())
    } else {
        let s: String = u.arbitrary()?;
        Ok(s.chars().take(64).collect())
    }
}

fn gen_bigint(u: &mut Unstructured) -> Result<BigInt> {
    let neg = u.arbitrary::<bool>()?;
    let b = match u.int_in_range(0u8..=9)? {
        // At V8's limit: 2^max - 1 (exactly max bits, the largest V8
        // accepts) and just beyond it. Each costs 128 MiB and ~100 ms, so
        // only behind a magic byte: running out of input must not pick it
        // (an exhausted `Unstructured` answers every `ratio` with true).
        0 if u.arbitrary::<u8>()? == 0xB1 => {
            let bits = V8_BIGINT_MAX_BITS + u.int_in_range(0u64..=1)?;
            (BigInt::from(1) << (bits as usize)) - u.int_in_range(0u8..=1)?
        }
        1 => BigInt::from(1) << u.int_in_range(0usize..=70_000)?,
        0 | 2 => BigInt::from(*u.choose(INTEGERS)?),
        _ => {
            let len = u.int_in_range(0usize..=64)?;
            BigInt::from_signed_bytes_le(u.bytes(len.min(u.len()))?)
        }
    };
    Ok(if neg { -b } else { b })
}

fn gen_number(u: &mut Unstructured) -> Result<f64> {
    Ok(if u.ratio(2, 3)? { *u.choose(NUMBERS)? } else { f64::from_bits(u.arbitrary()?) })
}

fn gen_value(u: &mut Unstructured, depth: u32) -> Result<Value> {
    let leaf_only = depth >= MAX_GEN_DEPTH;
    let pick = u.int_in_range(0u8..=if leaf_only { 9 } else { 15 })?;
    Ok(match pick {
        0 => Value::Undefined,
        1 => Value::Null,
        2 => Value::Bool(u.arbitrary()?),
        3 => Value::Integer(if u.ratio(2, 3)? { *u.choose(INTEGERS)? } else { u.arbitrary()? }),
        4 => Value::Number(gen_number(u)?),
        5 => Value::BigInt(gen_bigint(u)?),
        6 | 7 => Value::String(gen_string(u)?),
        8 => Value::Date(if u.ratio(2, 3)? { *u.choose(DATES)? } else { f64::from_bits(u.arbitrary()?) }),
        9 => {
            let len = u.int_in_range(0usize..=256)?;
            Value::Bytes(u.bytes(len.min(u.len()))?.to_vec())
        }
        10 => Value::Array(items(u, depth)?),
        11 => {
            let n = u.int_in_range(0..=MAX_ITEMS)?;
            let mut props = Vec::with_capacity(n);
            for _ in 0..n {
                props.push((gen_string(u)?, gen_value(u, depth + 1)?));
            }
            Value::Object(props)
        }
        12 => {
            let n = u.int_in_range(0..=MAX_ITEMS)?;
            let mut entries = Vec::with_capacity(n);
            for _ in 0..n {
                entries.push((gen_value(u, depth + 1)?, gen_value(u, depth + 1)?));
            }
            Value::Map(entries)
        }
        13 => Value::Set(items(u, depth)?),
        14 => Value::Error(Box::new(polyracer::ErrorValue {
            name: if u.ratio(1, 2)? {
                (*u.choose(&["", "Error", "TypeError", "RangeError", "ReferenceError", "SyntaxError", "EvalError"])?)
                    .to_owned()
            } else {
                gen_string(u)?
            },
            message: gen_string(u)?,
            stack: if u.arbitrary()? { String::new() } else { gen_string(u)? },
        })),
        // A chain of single-element arrays around the depth limit, behind a
        // magic byte: reading one back is quadratic in depth (the cycle
        // check), so as a plain choice it took most of the fuzzing time.
        _ if u.arbitrary::<u8>()? != 0xD0 => Value::Null,
        _ => {
            let levels = MAX_DEPTH - 3 + u.int_in_range(0usize..=5)?;
            let mut v = gen_value(u, MAX_GEN_DEPTH)?;
            for _ in 0..levels {
                v = Value::Array(vec![v]);
            }
            v
        }
    })
}

fn items(u: &mut Unstructured, depth: u32) -> Result<Vec<Value>> {
    let n = u.int_in_range(0..=MAX_ITEMS)?;
    (0..n).map(|_| gen_value(u, depth + 1)).collect()
}

// ------------------------------------------------------------ the oracle

/// What JS hands back for a host value, per the documented rules.
fn expected(v: &Value) -> Value {
    match v {
        &Value::Integer(i) if i.unsigned_abs() > MAX_SAFE_INTEGER as u64 => Value::BigInt(BigInt::from(i)),
        &Value::Number(n) => number(n),
        &Value::Date(ms) => Value::Date(time_clip(ms)),
        Value::Array(items) => Value::Array(items.iter().map(expected).collect()),
        Value::Object(props) => {
            // create_data_property: a repeated key keeps its first position
            // and takes the last value; array-index keys come first, ascending.
            let mut out: Vec<(String, Value)> = Vec::new();
            for (k, val) in props {
                match out.iter_mut().find(|(ok, _)| ok == k) {
                    Some(slot) => slot.1 = expected(val),
                    None => out.push((k.clone(), expected(val))),
                }
            }
            let (mut idx, named): (Vec<_>, Vec<_>) = out.into_iter().partition(|(k, _)| array_index(k).is_some());
            idx.sort_by_key(|(k, _)| array_index(k));
            idx.extend(named);
            Value::Object(idx)
        }
        Value::Map(entries) => {
            let mut out: Vec<(Value, Value)> = Vec::new();
            for (k, val) in entries {
                let k = map_key(expected(k));
                match out.iter_mut().find(|(ok, _)| same_value_zero(ok, &k)) {
                    Some(slot) => slot.1 = expected(val),
                    None => out.push((k, expected(val))),
                }
            }
            Value::Map(out)
        }
        Value::Set(items) => {
            let mut out: Vec<Value> = Vec::new();
            for item in items {
                let item = map_key(expected(item));
                if !out.iter().any(|o| same_value_zero(o, &item)) {
                    out.push(item);
                }
            }
            Value::Set(out)
        }
        Value::Error(e) => Value::Error(Box::new(polyracer::ErrorValue {
            name: if e.name.is_empty() { "Error".into() } else { e.name.clone() },
            ..(**e).clone()
        })),
        other => other.clone(),
    }
}

fn number(n: f64) -> Value {
    if n.fract() == 0.0 && !(n == 0.0 && n.is_sign_negative()) && n.abs() <= MAX_SAFE_INTEGER as f64 {
        Value::Integer(n as i64)
    } else {
        Value::Number(n)
    }
}

/// ECMAScript TimeClip.
fn time_clip(ms: f64) -> f64 {
    if !ms.is_finite() || ms.abs() > 8.64e15 {
        f64::NAN
    } else {
        ms.trunc() + 0.0
    }
}

/// Map and Set normalise a `-0` key to `+0`.
fn map_key(k: Value) -> Value {
    match k {
        // A float pattern compares with ==, so this also matches -0.
        Value::Number(0.0) => Value::Integer(0),
        other => other,
    }
}

fn array_index(k: &str) -> Option<u32> {
    let n: u32 = k.parse().ok()?;
    (n != u32::MAX && n.to_string() == k).then_some(n)
}

/// SameValueZero for keys: primitives by value, objects never equal (each
/// host value becomes a fresh JS object).
fn same_value_zero(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Undefined, Value::Undefined) | (Value::Null, Value::Null) => true,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Integer(_) | Value::Number(_), Value::Integer(_) | Value::Number(_)) => {
            let (x, y) = (a.as_f64().unwrap(), b.as_f64().unwrap());
            x == y || (x.is_nan() && y.is_nan())
        }
        (Value::BigInt(x), Value::BigInt(y)) => x == y,
        (Value::String(x), Value::String(y)) => x == y,
        _ => false,
    }
}

/// Exact equality: NaN equals NaN, `-0` differs from `0`, an error's stack
/// is compared only when the host set one (V8 makes its own otherwise).
fn same(want: &Value, got: &Value) -> bool {
    match (want, got) {
        (Value::Number(x), Value::Number(y)) | (Value::Date(x), Value::Date(y)) => {
            (x.is_nan() && y.is_nan()) || (x == y && x.is_sign_negative() == y.is_sign_negative())
        }
        (Value::Integer(x), Value::Integer(y)) => x == y,
        (Value::Array(x), Value::Array(y)) | (Value::Set(x), Value::Set(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|((ka, a), (kb, b))| ka == kb && same(a, b))
        }
        (Value::Map(x), Value::Map(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|((ka, a), (kb, b))| same(ka, kb) && same(a, b))
        }
        (Value::Error(x), Value::Error(y)) => {
            x.name == y.name && x.message == y.message && (x.stack.is_empty() || x.stack == y.stack)
        }
        (Value::Number(_) | Value::Integer(_), _) | (_, Value::Number(_) | Value::Integer(_)) => false,
        _ => want == got,
    }
}

/// Depth of the deepest container (the outermost is 0), or `None` for a
/// primitive.
fn container_depth(v: &Value) -> Option<usize> {
    let children: Box<dyn Iterator<Item = &Value>> = match v {
        Value::Array(x) | Value::Set(x) => Box::new(x.iter()),
        Value::Object(x) => Box::new(x.iter().map(|(_, v)| v)),
        Value::Map(x) => Box::new(x.iter().flat_map(|(k, v)| [k, v])),
        Value::Bytes(_) | Value::Date(_) | Value::Error(_) => return Some(0),
        _ => return None,
    };
    Some(children.filter_map(container_depth).map(|d| d + 1).max().unwrap_or(0))
}

fn has_invalid_date(v: &Value) -> bool {
    match v {
        Value::Date(ms) => ms.is_nan(),
        Value::Array(x) | Value::Set(x) => x.iter().any(has_invalid_date),
        Value::Object(x) => x.iter().any(|(_, v)| has_invalid_date(v)),
        Value::Map(x) => x.iter().any(|(k, v)| has_invalid_date(k) || has_invalid_date(v)),
        _ => false,
    }
}

fn too_big_bigint(v: &Value) -> bool {
    match v {
        Value::BigInt(b) => b.bits() > V8_BIGINT_MAX_BITS,
        Value::Array(x) | Value::Set(x) => x.iter().any(too_big_bigint),
        Value::Object(x) => x.iter().any(|(_, v)| too_big_bigint(v)),
        Value::Map(x) => x.iter().any(|(k, v)| too_big_bigint(k) || too_big_bigint(v)),
        _ => false,
    }
}

/// Checks one read-back against the prediction, or the error against the
/// reasons a value may be refused.
fn check(path: &str, input: &Value, want: &Value, got: polyracer::Result<Value>) {
    let depth = container_depth(input).unwrap_or(0);
    match got {
        Ok(got) => {
            assert!(!too_big_bigint(input), "{path}: a BigInt beyond V8's limit went through");
            assert!(!has_invalid_date(want), "{path}: an Invalid Date came back as a Date");
            if !same(want, &got) {
                panic!("{path}: round trip changed the value\n want: {}\n  got: {}", short(want), short(&got));
            }
        }
        Err(Error::Conversion(m)) if m.contains("nesting deeper") && depth + 1 >= MAX_DEPTH => {}
        // An Invalid Date goes in but no host type can hold it coming back.
        Err(Error::Conversion(m)) if m.contains("invalid Date") && has_invalid_date(want) => {}
        Err(Error::Conversion(m)) if m.contains("BigInt") && too_big_bigint(input) => {}
        Err(e) => panic!("{path}: unexpected error {e:?} for {}", short(input)),
    }
}

fn short(v: &Value) -> String {
    let s = format!("{v:?}");
    if s.len() > 2000 {
        format!("{}… ({} chars)", &s[..s.floor_char_boundary(2000)], s.len())
    } else {
        s
    }
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(v) = gen_value(&mut u, 0) else { return };
    let ctx = context();
    let want = expected(&v);

    match ctx.set_global("fz", v.clone()) {
        Ok(()) => check("set_global/eval", &v, &want, ctx.eval("fz")),
        Err(e) => check("set_global", &v, &want, Err(e)),
    }
    check("call", &v, &want, ctx.call("(x) => x", std::slice::from_ref(&v)));
    // Arguments a host function cannot receive become a TypeError inside JS
    // (which, uncaught, comes back as a JS error): the same refusals.
    let through_host = match ctx.call("(x) => hostEcho(x)", std::slice::from_ref(&v)) {
        Err(Error::Js(e)) if e.name == "TypeError" && e.message.contains("conversion error: ") => {
            Err(Error::Conversion(e.message.clone()))
        }
        other => other,
    };
    check("host callback", &v, &want, through_host);
    // Objects also through a handle, read back on the host side.
    if let Ok(Value::Handle(h)) =
        ctx.call_with("(x) => x", std::slice::from_ref(&v), EvalOptions { as_handle: true, ..Default::default() })
    {
        check("handle", &v, &want, h.to_value());
    }
});
