//! Conversion helpers shared by both directions of `transfer`'s walks:
//! the path-naming error, numbers, BigInts, errors and strings.

use num_bigint::{BigInt, Sign};

use crate::error::Error;
use crate::handle::HandleKind;
use crate::value::{ErrorValue, MAX_SAFE_INTEGER};

/// Deepest nesting converted either way. Deeper structures give a
/// conversion error naming the path instead of overflowing the stack.
pub const MAX_DEPTH: usize = 2000;

/// A conversion failure with the path to the offending value, built up as
/// the error unwinds (innermost segment first).
pub(crate) struct ConvError {
    msg: String,
    path: Vec<String>,
    /// A sink or source stopped the walk (it keeps its own error).
    halted: bool,
}

/// What a call fails with when a binding's sink or source stopped the
/// walk; the binding raises the error it kept instead.
pub(crate) const HALTED: &str = "the host stopped the conversion";

impl ConvError {
    pub(crate) fn new(msg: impl Into<String>) -> Self {
        ConvError { msg: msg.into(), path: Vec::new(), halted: false }
    }
    pub(crate) fn halt() -> Self {
        ConvError { msg: HALTED.into(), path: Vec::new(), halted: true }
    }
    pub(crate) fn at(mut self, seg: String) -> Self {
        if !self.halted {
            self.path.push(seg);
        }
        self
    }
    /// `at`, with the segment built only when it is needed.
    pub(crate) fn at_with(self, seg: impl FnOnce() -> String) -> Self {
        if self.halted {
            return self;
        }
        self.at(seg())
    }
    pub(crate) fn into_error(self) -> Error {
        if self.halted {
            return Error::Conversion(self.msg);
        }
        let mut path = String::from("$");
        for seg in self.path.iter().rev() {
            path.push_str(seg);
        }
        Error::Conversion(format!("{} at {path}", self.msg))
    }
}

pub(crate) fn key_seg(k: &str) -> String {
    if crate::context::is_dotted_path(k) && !k.contains('.') {
        format!(".{k}")
    } else {
        format!("[{k:?}]")
    }
}

pub(crate) fn obj_value_of<'s>(
    scope: &mut v8::PinScope<'s, '_>,
    obj: v8::Local<'s, v8::Object>,
) -> Option<v8::Local<'s, v8::Value>> {
    let key = v8::String::new(scope, "valueOf")?;
    let f = obj.get(scope, key.into())?;
    let f: v8::Local<v8::Function> = f.try_into().ok()?;
    f.call(scope, obj.into(), &[])
}

/// `n` as an integer when it is one the host should see as an integer:
/// integral, within ±(2^53 − 1), and not `-0`.
#[inline]
pub fn safe_integer(n: f64) -> Option<i64> {
    let i = n as i64;
    if i as f64 == n && i.unsigned_abs() <= MAX_SAFE_INTEGER as u64 && !(i == 0 && n.is_sign_negative()) {
        Some(i)
    } else {
        None
    }
}

pub(crate) fn object_kind(v: v8::Local<v8::Value>) -> HandleKind {
    if v.is_function() {
        HandleKind::Function
    } else if v.is_promise() {
        HandleKind::Promise
    } else if v.is_array() {
        HandleKind::Array
    } else if v.is_symbol() {
        HandleKind::Symbol
    } else {
        HandleKind::Object
    }
}

pub(crate) fn bigint_from_v8(b: v8::Local<v8::BigInt>) -> BigInt {
    let (i, lossless) = b.i64_value();
    if lossless {
        return BigInt::from(i);
    }
    let mut words = vec![0u64; b.word_count()];
    let (negative, words) = b.to_words_array(&mut words);
    let mut bytes = Vec::with_capacity(words.len() * 8);
    for w in words.iter() {
        bytes.extend_from_slice(&w.to_le_bytes());
    }
    BigInt::from_bytes_le(if negative { Sign::Minus } else { Sign::Plus }, &bytes)
}

pub(crate) fn bigint_to_v8<'s>(scope: &mut v8::PinScope<'s, '_>, b: &BigInt) -> Option<v8::Local<'s, v8::BigInt>> {
    let (sign, digits) = b.to_u64_digits();
    if digits.is_empty() {
        return Some(v8::BigInt::new_from_i64(scope, 0));
    }
    v8::BigInt::new_from_words(scope, sign == Sign::Minus, &digits)
}

pub(crate) fn get_str(scope: &mut v8::PinScope, obj: v8::Local<v8::Object>, key: &str) -> Option<String> {
    let k = v8::String::new(scope, key)?;
    let v = obj.get(scope, k.into())?;
    if v.is_undefined() {
        None
    } else {
        Some(v.to_rust_string_lossy(scope))
    }
}

pub(crate) fn error_value(scope: &mut v8::PinScope, obj: v8::Local<v8::Object>) -> ErrorValue {
    ErrorValue {
        name: get_str(scope, obj, "name").unwrap_or_else(|| "Error".into()),
        message: get_str(scope, obj, "message").unwrap_or_default(),
        stack: get_str(scope, obj, "stack").unwrap_or_default(),
    }
}

/// Conversion recurses on the calling thread, whose stack may be small
/// (a 256 KiB pool thread): nesting that would overflow it is an error.
pub(crate) fn check_stack() -> Result<(), ConvError> {
    if crate::runtime::locker::stack_left() == 0 {
        return Err(ConvError::new("value nested too deeply for this thread's stack"));
    }
    Ok(())
}

pub(crate) fn new_string<'s>(
    scope: &mut v8::PinScope<'s, '_>,
    s: &str,
) -> Result<v8::Local<'s, v8::String>, ConvError> {
    new_utf8(scope, s, v8::NewStringType::Normal)
}

pub(crate) fn new_utf8<'s>(
    scope: &mut v8::PinScope<'s, '_>,
    s: &str,
    kind: v8::NewStringType,
) -> Result<v8::Local<'s, v8::String>, ConvError> {
    check_length(s.len(), "bytes")?;
    v8::String::new_from_utf8(scope, s.as_bytes(), kind).ok_or_else(|| ConvError::new("string too long for V8"))
}

/// A string of `len` `unit`s is one V8 can hold.
pub(crate) fn check_length(len: usize, unit: &str) -> Result<(), ConvError> {
    if len > v8::String::MAX_LENGTH {
        return Err(ConvError::new(format!(
            "string of {len} {unit} exceeds V8's maximum string length ({})",
            v8::String::MAX_LENGTH
        )));
    }
    Ok(())
}

/// Creates an error of the named class (`TypeError`, ...); unknown names make
/// an `Error` whose `name` property is set.
pub(crate) fn make_error<'s>(
    scope: &mut v8::PinScope<'s, '_>,
    name: &str,
    msg: v8::Local<'s, v8::String>,
) -> v8::Local<'s, v8::Value> {
    let err = match name {
        "TypeError" => v8::Exception::type_error(scope, msg),
        "RangeError" => v8::Exception::range_error(scope, msg),
        "ReferenceError" => v8::Exception::reference_error(scope, msg),
        "SyntaxError" => v8::Exception::syntax_error(scope, msg),
        _ => v8::Exception::error(scope, msg),
    };
    if !matches!(name, "Error" | "TypeError" | "RangeError" | "ReferenceError" | "SyntaxError" | "") {
        if let Ok(obj) = v8::Local::<v8::Object>::try_from(err) {
            let k = v8::String::new(scope, "name").unwrap();
            if let Some(n) = v8::String::new(scope, name) {
                obj.set(scope, k.into(), n.into());
            }
        }
    }
    err
}
