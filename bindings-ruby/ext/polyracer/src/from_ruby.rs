//! Ruby → JS: a `polyracer::transfer::Source` that core's walk reads Ruby
//! objects through while it creates the JS values (no intermediate tree).

use magnus::encoding::EncodingCapable;
use magnus::rb_sys::{AsRawValue, FromRawValue};
use magnus::value::{BoxValue, ReprValue};
use magnus::{
    Error, Fixnum, Float, RArray, RBignum, RHash, RString, RTypedData, Ruby, Symbol, Time, TryConvert, Value,
};
use polyracer as pr;
use polyracer::transfer::{Arg, Halt, HostRef, Read, Source};

use crate::classes::{conversion_error, JsRef, C_SET, UNDEFINED};
use crate::gvl::with_gvl;

/// Reads Ruby objects for one call. Refs are `VALUE`s of the caller's
/// objects and of their children (alive through them); objects made while
/// reading (a `Set`'s array, a re-encoded string) are kept in `keep`, which
/// Ruby's GC sees.
pub(crate) struct RbSource {
    keep: Option<BoxValue<RArray>>,
    /// The entries of the Hash read last, collected by the same iteration
    /// that checked its keys (`read`), for the `entries` core asks for next.
    stash: Option<(HostRef, Vec<(HostRef, HostRef)>)>,
    /// Text read for a `Read` that borrows it (a symbol's name, a string
    /// that is not valid UTF-8).
    text: String,
    error: Option<Error>,
}

// SAFETY: used on one thread within one call, and it reads Ruby objects
// only under `enter`, which takes the GVL.
unsafe impl Send for RbSource {}

impl RbSource {
    pub(crate) fn new() -> RbSource {
        RbSource { keep: None, stash: None, text: String::new(), error: None }
    }

    pub(crate) fn take_error(&mut self) -> Option<Error> {
        self.error.take()
    }

    fn fail<T>(&mut self, e: Error) -> Result<T, Halt> {
        self.error = Some(e);
        Err(Halt)
    }

    fn hold(&mut self, ruby: &Ruby, v: Value) {
        let keep = self.keep.get_or_insert_with(|| BoxValue::new(ruby.ary_new()));
        let _ = keep.push(v);
    }

    /// An argument: scalars read now (the GVL is held), so a call with only
    /// scalar arguments needs no GVL round trip inside; containers and long
    /// strings during the call (copied once, straight into JS).
    pub(crate) fn arg(&mut self, ruby: &Ruby, v: Value) -> Result<Arg, Error> {
        let long_string = RString::from_value(v).is_some_and(|s| s.len() > pr::transfer::ENTER_STRING_LEN);
        if long_string
            || RArray::from_value(v).is_some()
            || RHash::from_value(v).is_some()
            || v.is_kind_of(ruby.get_inner(&C_SET))
        {
            return Ok(Arg::Host(HostRef(v.as_raw() as usize)));
        }
        self.value(ruby, v).map(Arg::Value)
    }

    pub(crate) fn args(&mut self, ruby: &Ruby, args: &[Value]) -> Result<Vec<Arg>, Error> {
        args.iter().map(|a| self.arg(ruby, *a)).collect()
    }

    /// A `Value` read from a Ruby object (what must be kept).
    pub(crate) fn value(&mut self, ruby: &Ruby, v: Value) -> Result<pr::Value, Error> {
        pr::transfer::collect(self, HostRef(v.as_raw() as usize))
            .map_err(|e| self.take_error().unwrap_or_else(|| conversion_error(ruby, e.to_string())))
    }
}

/// A `Value` read from a Ruby object.
pub(crate) fn value_from_rb(ruby: &Ruby, v: Value) -> Result<pr::Value, Error> {
    RbSource::new().value(ruby, v)
}

/// `Value`s of a call's arguments (for calls that keep them: async calls).
pub(crate) fn values_from_rb(ruby: &Ruby, args: &[Value]) -> Result<Vec<pr::Value>, Error> {
    let mut src = RbSource::new();
    args.iter().map(|a| src.value(ruby, *a)).collect()
}

/// A Ruby string's text (source code, names): UTF-8, invalid bytes made
/// U+FFFD.
pub(crate) fn rstring_to_string(s: RString) -> Result<String, Error> {
    // SAFETY: the bytes are copied before any Ruby code runs.
    let bytes = unsafe { s.as_slice() };
    Ok(match std::str::from_utf8(bytes) {
        Ok(t) => t.to_owned(),
        Err(_) => String::from_utf8_lossy(bytes).into_owned(),
    })
}

fn utf8(bytes: &[u8]) -> Option<&str> {
    std::str::from_utf8(bytes).ok()
}

/// Collects the entries of `h` into `out`, and whether every key is a
/// string or symbol: then the Hash is a JS object; any other key makes it a
/// `Map` (keys kept as values). One iteration for both (each
/// `rb_hash_foreach` runs under an `rb_ensure`).
fn hash_entries(h: RHash, out: &mut Vec<(HostRef, HostRef)>) -> bool {
    struct Acc<'a> {
        out: &'a mut Vec<(HostRef, HostRef)>,
        plain: bool,
    }
    unsafe extern "C" fn push(key: rb_sys::VALUE, val: rb_sys::VALUE, arg: rb_sys::VALUE) -> std::os::raw::c_int {
        // SAFETY: `arg` is the `Acc` below; `key` a live key.
        let acc = unsafe { &mut *(arg as *mut Acc) };
        let k = unsafe { Value::from_raw(key) };
        if acc.plain && RString::from_value(k).is_none() && Symbol::from_value(k).is_none() {
            acc.plain = false;
        }
        acc.out.push((HostRef(key as usize), HostRef(val as usize)));
        rb_sys::st_retval::ST_CONTINUE as _
    }
    let mut acc = Acc { out, plain: true };
    // SAFETY: the GVL is held. `rb_hash_foreach` raises only if the hash
    // changes during the iteration, which nothing here can do; a plain
    // callback (no `protect` per entry, as magnus's `foreach` does) was a
    // tenth of reading a Hash of records.
    unsafe { rb_sys::rb_hash_foreach(h.as_raw(), Some(push), &mut acc as *mut Acc as rb_sys::VALUE) };
    acc.plain
}

impl Source for RbSource {
    fn read(&mut self, v: HostRef) -> Result<Read<'_>, Halt> {
        // SAFETY: reads happen under `enter`, with the GVL held.
        let ruby = unsafe { Ruby::get_unchecked() };
        // SAFETY: a live VALUE (type docs).
        let v = unsafe { Value::from_raw(v.0 as rb_sys::VALUE) };
        if v.is_nil() {
            return Ok(Read::Null);
        }
        let raw = v.as_raw();
        if raw == ruby.qtrue().as_raw() {
            return Ok(Read::Bool(true));
        }
        if raw == ruby.qfalse().as_raw() {
            return Ok(Read::Bool(false));
        }
        if let Some(i) = Fixnum::from_value(v) {
            return Ok(Read::Integer(i.to_i64()));
        }
        if let Some(f) = Float::from_value(v) {
            return Ok(Read::Number(f.to_f64()));
        }
        if let Some(s) = RString::from_value(v) {
            let idx = s.enc_get();
            // SAFETY: the bytes stay valid while `s` is unchanged, which no
            // Ruby code can do during the walk.
            let bytes: &'static [u8] = unsafe { std::mem::transmute::<&[u8], &'static [u8]>(s.as_slice()) };
            if idx == ruby.ascii8bit_encindex() {
                return Ok(Read::Bytes(bytes));
            }
            if idx == ruby.utf8_encindex() || idx == ruby.usascii_encindex() {
                // Ruby caches what a string holds (its code range): valid
                // text needs no second scan here.
                // SAFETY: the GVL is held; `s` is a String.
                let cr = unsafe { rb_sys::rb_enc_str_coderange(s.as_raw()) } as u32;
                if cr == rb_sys::ruby_coderange_type::RUBY_ENC_CODERANGE_7BIT as u32
                    || (cr == rb_sys::ruby_coderange_type::RUBY_ENC_CODERANGE_VALID as u32
                        && idx == ruby.utf8_encindex())
                {
                    // SAFETY: Ruby checked the bytes are UTF-8 (7-bit: ASCII).
                    return Ok(Read::String(unsafe { std::str::from_utf8_unchecked(bytes) }));
                }
                return Ok(match utf8(bytes) {
                    Some(t) => Read::String(t),
                    None => {
                        self.text = String::from_utf8_lossy(bytes).into_owned();
                        Read::String(&self.text)
                    }
                });
            }
            return match s.conv_enc(ruby.utf8_encoding()) {
                Ok(u) => {
                    self.hold(&ruby, u.as_value());
                    // SAFETY: as above; `u` is kept alive in `keep`.
                    let b = unsafe { u.as_slice() };
                    self.text = String::from_utf8_lossy(b).into_owned();
                    Ok(Read::String(&self.text))
                }
                Err(e) => self.fail(e),
            };
        }
        if let Some(sym) = Symbol::from_value(v) {
            return match sym.name() {
                Ok(n) => {
                    self.text = n.into_owned();
                    Ok(Read::String(&self.text))
                }
                Err(e) => self.fail(e),
            };
        }
        // Containers before the rarer kinds: a failed typed-data conversion
        // formats an error message, which cost more than the whole read.
        if let Some(a) = RArray::from_value(v) {
            return Ok(Read::Array(a.len()));
        }
        if let Some(h) = RHash::from_value(v) {
            let mut entries = self.stash.take().map(|(_, e)| e).unwrap_or_default();
            entries.clear();
            let plain = hash_entries(h, &mut entries);
            let n = entries.len();
            self.stash = Some((HostRef(raw as usize), entries));
            return Ok(if plain { Read::Object(n) } else { Read::Map(n) });
        }
        if RTypedData::from_value(v).is_some() {
            if let Ok(h) = <&JsRef>::try_convert(v) {
                return Ok(Read::Handle(h.h.clone()));
            }
        }
        if let Some(b) = RBignum::from_value(v) {
            if let Ok(i) = b.to_i64() {
                return Ok(Read::Integer(i));
            }
            let s: RString = match b.funcall("to_s", ()) {
                Ok(s) => s,
                Err(e) => return self.fail(e),
            };
            // SAFETY: copied at once.
            let text = String::from_utf8_lossy(unsafe { s.as_slice() }).into_owned();
            return Ok(match text.parse::<pr::BigInt>() {
                Ok(big) => Read::BigInt(Box::new(big)),
                Err(e) => Read::Unsupported(format!("bad Integer: {e}")),
            });
        }
        if let Some(t) = Time::from_value(v) {
            return match t.timespec() {
                Ok(ts) => Ok(Read::Date(ts.tv_sec as f64 * 1000.0 + (ts.tv_nsec as f64 / 1e6).floor())),
                Err(e) => self.fail(e),
            };
        }
        if raw == ruby.get_inner(&UNDEFINED).as_raw() {
            return Ok(Read::Undefined);
        }
        if v.is_kind_of(ruby.get_inner(&C_SET)) {
            return Ok(Read::Set(v.funcall::<_, _, usize>("size", ()).unwrap_or(0)));
        }
        // SAFETY: reads the class name of a live object.
        Ok(Read::Unsupported(format!("cannot convert a Ruby {} to JavaScript", unsafe { v.classname() })))
    }

    fn items(&mut self, v: HostRef, out: &mut Vec<HostRef>) -> Result<(), Halt> {
        // SAFETY: under `enter` (GVL held); a live VALUE just read.
        let ruby = unsafe { Ruby::get_unchecked() };
        let v = unsafe { Value::from_raw(v.0 as rb_sys::VALUE) };
        let a = match RArray::from_value(v) {
            Some(a) => a,
            // A Set: its items as a new array, kept for the call.
            None => match v.funcall::<_, _, RArray>("to_a", ()) {
                Ok(a) => {
                    self.hold(&ruby, a.as_value());
                    a
                }
                Err(e) => return self.fail(e),
            },
        };
        let raw = a.as_raw();
        for i in 0..a.len() {
            // SAFETY: the GVL is held; `rb_ary_entry` within the length
            // only reads (magnus's `entry` wraps it in an `rb_protect`).
            out.push(HostRef(unsafe { rb_sys::rb_ary_entry(raw, i as _) } as usize));
        }
        Ok(())
    }

    fn entries(&mut self, v: HostRef, out: &mut Vec<(HostRef, HostRef)>) -> Result<(), Halt> {
        // SAFETY: under `enter` (GVL held); a live Hash just read.
        let v = unsafe { Value::from_raw(v.0 as rb_sys::VALUE) };
        let Some(h) = RHash::from_value(v) else { return Err(Halt) };
        match &mut self.stash {
            Some((at, entries)) if at.0 == h.as_raw() as usize => out.append(entries),
            _ => {
                hash_entries(h, out);
            }
        }
        Ok(())
    }

    /// Refs are VALUEs: the value being converted keeps its containers
    /// alive, and temporaries are held (`hold`), so no address is reused.
    fn identities(&self) -> bool {
        true
    }

    fn enter(&mut self, walk: &mut dyn FnMut(&mut dyn Source)) {
        with_gvl(|_ruby| walk(self));
    }
}
