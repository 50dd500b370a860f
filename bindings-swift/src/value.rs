//! `JsValue`: the uniffi enum every value crosses as (its conversion is in
//! `convert`).

use std::sync::Arc;

use polyracer as pr;

/// A JS value copied to the host, or a handle to one that stays in its
/// context. Integral numbers within ±(2^53 − 1) arrive as `Integer`, others
/// as `Number`; BigInts travel as decimal digits so no precision is lost.
#[derive(Clone, Debug, uniffi::Enum)]
#[uniffi::export(Eq)]
pub enum JsValue {
    Undefined,
    Null,
    Bool(bool),
    Integer(i64),
    Number(f64),
    /// Decimal digits with an optional leading `-`.
    Bigint(String),
    String(String),
    /// Milliseconds since the Unix epoch (UTC); NaN for an invalid `Date`.
    Date(f64),
    Bytes(Vec<u8>),
    Array(Vec<JsValue>),
    /// Own enumerable string keys, in JS order.
    Object(Vec<JsProperty>),
    Map(Vec<JsMapEntry>),
    Set(Vec<JsValue>),
    /// A JS `Error` object returned (not thrown) as a value.
    Error {
        name: String,
        message: String,
        stack: String,
    },
    Function(Arc<JsHandle>),
    Promise(Arc<JsHandle>),
    Symbol(Arc<JsHandle>),
    /// An object kept in the context (`as_handle`, or a proxy).
    ObjectHandle(Arc<JsHandle>),
    /// An array kept in the context (`as_handle`).
    ArrayHandle(Arc<JsHandle>),
}

/// One property of a copied object.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct JsProperty {
    pub key: String,
    pub value: JsValue,
}

/// One entry of a copied `Map`.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct JsMapEntry {
    pub key: JsValue,
    pub value: JsValue,
}

/// Structural equality; numbers compare by value across `Integer` and
/// `Number`, handles by the JS reference they hold.
impl PartialEq for JsValue {
    fn eq(&self, other: &Self) -> bool {
        use JsValue::*;
        match (self, other) {
            (Undefined, Undefined) | (Null, Null) => true,
            (Bool(a), Bool(b)) => a == b,
            (Integer(a), Integer(b)) => a == b,
            (Integer(a), Number(b)) | (Number(b), Integer(a)) => (*a as f64) == *b,
            (Number(a), Number(b)) => a == b,
            (Bigint(a), Bigint(b)) => a == b,
            (String(a), String(b)) => a == b,
            (Date(a), Date(b)) => a == b,
            (Bytes(a), Bytes(b)) => a == b,
            (Array(a), Array(b)) | (Set(a), Set(b)) => a == b,
            (Object(a), Object(b)) => a == b,
            (Map(a), Map(b)) => a == b,
            (Error { name: n1, message: m1, .. }, Error { name: n2, message: m2, .. }) => n1 == n2 && m1 == m2,
            (Function(a), Function(b))
            | (Promise(a), Promise(b))
            | (Symbol(a), Symbol(b))
            | (ObjectHandle(a), ObjectHandle(b))
            | (ArrayHandle(a), ArrayHandle(b)) => a.0.same_handle(&b.0),
            _ => false,
        }
    }
}

impl Eq for JsValue {}

/// What a [`JsHandle`] refers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum HandleKind {
    Object,
    Array,
    Function,
    Promise,
    Symbol,
}

/// A reference to a JS object, array, function, promise or symbol that
/// stays in its context; released when the host drops its last reference.
#[derive(uniffi::Object)]
pub struct JsHandle(pub(crate) pr::JsHandle);

impl std::fmt::Debug for JsHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}
