//! JS → Ruby: a `polyracer::transfer::Sink` that builds Ruby objects
//! directly while core walks the JS value (no intermediate tree).

use magnus::rb_sys::{AsRawValue, FromRawValue};
use magnus::value::{BoxValue, Opaque, ReprValue};
use magnus::{Class, Error, IntoValue, RArray, Ruby, TryConvert, Value};
use polyracer as pr;
use polyracer::transfer::{Halt, JsStr, Key, Sink};

use crate::classes::{conversion_error, ivar, JsRef, RbContext, C_SET, E_JS};
use crate::gvl::with_gvl;

enum Open {
    Array(RArray),
    /// A Hash of a JS object, with the key of the value that comes next (a
    /// frozen String).
    Hash(magnus::RHash, Option<Value>),
    /// A Hash of a JS `Map`, with the key of the value that comes next.
    Map(magnus::RHash, Option<Value>),
    /// A Set's items, made into a `Set` at the end.
    Set(RArray),
}

/// An open container and whether it is already in its parent.
struct Frame {
    open: Open,
    /// Placed when opened (an Array or Hash whose parent takes it as it
    /// is): reachable from the root from then on, and filled in place.
    placed: bool,
}

/// Builds one Ruby object from core's walk.
///
/// Calls run with the GVL released: core emits a root scalar outside
/// [`Sink::enter`] (kept as a `Value` and made into a Ruby object by
/// [`RbSink::finish`]); `enter` takes the GVL for the whole walk of
/// anything larger. Objects being built are kept in a GC-registered array
/// (`keep`): the open containers live only in this sink, where Ruby's GC
/// would not see them.
pub(crate) struct RbSink {
    owner: Opaque<Value>,
    attached: bool,
    pending: Option<pr::Value>,
    /// A root string with a lone surrogate, which a `Value` cannot hold.
    pending_utf16: Option<Vec<u16>>,
    /// The context's `keep_lone_surrogates:`.
    keep_lone_surrogates: bool,
    /// Byte buffers come as `IO::Buffer` views (`share_buffers: true`).
    share_bytes: bool,
    done: Option<Value>,
    stack: Vec<Frame>,
    /// One frozen, deduplicated Ruby string per distinct key (`Key::id`).
    keys: Vec<Value>,
    keep: Option<BoxValue<RArray>>,
    /// Text of a Latin-1 or UTF-16 string as UTF-8.
    buf: String,
    error: Option<Error>,
}

// SAFETY: made, used and finished on one thread within one call; it
// touches Ruby objects only with the GVL held (`attached`).
unsafe impl Send for RbSink {}

impl RbSink {
    /// A sink for a call made with the GVL released; `owner` is the
    /// `Polyracer::Context` that new handles keep alive.
    pub(crate) fn new(owner: Value) -> RbSink {
        let keep_lone_surrogates = <&RbContext>::try_convert(owner).is_ok_and(|c| c.keep_lone_surrogates);
        RbSink {
            keep_lone_surrogates,
            share_bytes: false,
            owner: Opaque::from(owner),
            attached: false,
            pending: None,
            pending_utf16: None,
            done: None,
            stack: Vec::new(),
            keys: Vec::new(),
            keep: None,
            buf: String::new(),
            error: None,
        }
    }

    /// Byte buffers as views of the sandbox's memory (`share_buffers: true`).
    pub(crate) fn sharing_bytes(mut self, share: bool) -> RbSink {
        self.share_bytes = share;
        self
    }

    pub(crate) fn take_error(&mut self) -> Option<Error> {
        self.error.take()
    }

    /// The object built (with the GVL held again).
    pub(crate) fn finish(mut self, ruby: &Ruby) -> Result<Value, Error> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        if let Some(units) = self.pending_utf16.take() {
            return Ok(utf16le_str(&units));
        }
        if let Some(v) = self.pending.take() {
            self.attached = true;
            if v.emit(&mut self).is_err() {
                return Err(self.error.take().unwrap_or_else(|| conversion_error(ruby, "conversion failed")));
            }
        }
        Ok(self.done.take().unwrap_or_else(|| ruby.qnil().as_value()))
    }

    fn ruby() -> Ruby {
        // SAFETY: called only while attached (the GVL is held).
        unsafe { Ruby::get_unchecked() }
    }

    fn fail<T>(&mut self, e: Error) -> Result<T, Halt> {
        self.error = Some(e);
        Err(Halt)
    }

    fn keep(&mut self, v: pr::Value) -> Result<(), Halt> {
        if self.stack.is_empty() && self.pending.is_none() && self.done.is_none() {
            self.pending = Some(v);
            Ok(())
        } else {
            Err(Halt)
        }
    }

    fn hold(&mut self, ruby: &Ruby, v: Value) {
        let keep = self.keep.get_or_insert_with(|| BoxValue::new(ruby.ary_new()));
        let _ = keep.push(v);
    }

    fn place(&mut self, v: Value) -> Result<(), Halt> {
        let ruby = Self::ruby();
        let r = match self.stack.last_mut().map(|f| &mut f.open) {
            None => {
                // The root: held, since only this sink knows it.
                self.hold(&ruby, v);
                self.done = Some(v);
                Ok(())
            }
            // Unprotected: pushing to a new, unfrozen Array and storing a
            // frozen String key run no Ruby code and raise nothing but
            // NoMemoryError (as making the String itself can); an
            // rb_protect per item was ~15% of building 1 MB of records.
            // SAFETY: the GVL is held; both are Ruby objects this sink made.
            Some(Open::Array(a) | Open::Set(a)) => {
                unsafe { rb_sys::rb_ary_push(a.as_raw(), v.as_raw()) };
                Ok(())
            }
            Some(Open::Hash(h, key)) => match key.take() {
                Some(k) => {
                    // SAFETY: as above; `k` is a frozen String.
                    unsafe { rb_sys::rb_hash_aset(h.as_raw(), k.as_raw(), v.as_raw()) };
                    Ok(())
                }
                None => Err(conversion_error(&ruby, "a value without a key")),
            },
            // A Map's keys can be any value, whose #hash is Ruby code that
            // may raise: protected.
            Some(Open::Map(h, key)) => match key.take() {
                Some(k) => h.aset(k, v),
                // A Map's key, waiting for its value: held where the GC
                // sees it.
                None => {
                    *key = Some(v);
                    self.hold(&ruby, v);
                    Ok(())
                }
            },
        };
        match r {
            Ok(()) => Ok(()),
            Err(e) => self.fail(e),
        }
    }

    /// Opens a container. An Array or Hash goes into its parent at once
    /// when the parent takes it as it is (an Array's item, an object's or
    /// a Map's value): it is filled in place and needs no other GC root.
    /// A Set (made at the end), a Map's key (hashed when it is inserted,
    /// so it must be complete) and the root are placed at their end.
    fn open(&mut self, o: Open) -> Result<(), Halt> {
        let v = match &o {
            Open::Array(a) | Open::Set(a) => a.as_value(),
            Open::Hash(h, _) | Open::Map(h, _) => h.as_value(),
        };
        let now = !matches!(o, Open::Set(_))
            && match self.stack.last().map(|f| &f.open) {
                Some(Open::Array(_) | Open::Set(_) | Open::Hash(..)) => true,
                Some(Open::Map(_, key)) => key.is_some(),
                None => false,
            };
        if now {
            self.place(v)?;
        } else {
            let ruby = Self::ruby();
            self.hold(&ruby, v);
        }
        self.stack.push(Frame { open: o, placed: now });
        Ok(())
    }

    /// A UTF-8 Ruby string of `s`; `frozen`: deduplicated and frozen (a
    /// Hash keeps a frozen key as it is instead of copying it).
    fn rb_str(&mut self, s: JsStr, frozen: bool) -> Value {
        if let JsStr::Utf16(units) = s {
            if !frozen && self.keep_lone_surrogates && has_lone_surrogate(units) {
                return utf16le_str(units);
            }
        }
        let (text, ascii): (&str, bool) = match s {
            // SAFETY: ASCII is UTF-8.
            JsStr::Latin1(b) if b.is_ascii() => (unsafe { std::str::from_utf8_unchecked(b) }, true),
            other => {
                self.buf.clear();
                other.push_to(&mut self.buf);
                (&self.buf, false)
            }
        };
        // SAFETY: the GVL is held; the bytes are UTF-8 and copied by Ruby.
        unsafe {
            if frozen {
                let enc = rb_sys::rb_utf8_encoding();
                Value::from_raw(rb_sys::rb_enc_interned_str(text.as_ptr().cast(), text.len() as _, enc))
            } else {
                Value::from_raw(utf8_str(text, ascii))
            }
        }
    }
}

/// A new String of `text`, UTF-8, with its code range known (7-bit when
/// `ascii`, else valid): made by `rb_str_new` and marked in its flags, as
/// Ruby's own `ENCODING_SET_INLINED` and `ENC_CODERANGE_SET` macros do.
/// `rb_utf8_str_new` looks the encoding up and checks it for every String
/// (`rb_enc_associate_index`, `rb_enc_from_index`: 8% of taking 0.3 MB of
/// strings out), and leaves the code range to be scanned later.
///
/// # Safety
/// The GVL is held.
unsafe fn utf8_str(text: &str, ascii: bool) -> rb_sys::VALUE {
    use rb_sys::ruby_coderange_type::{RUBY_ENC_CODERANGE_7BIT, RUBY_ENC_CODERANGE_VALID};
    use rb_sys::ruby_encoding_consts::{RUBY_ENCODING_MASK, RUBY_ENCODING_SHIFT};
    // SAFETY: (the caller's) the GVL is held; Ruby copies the bytes.
    let v = unsafe { rb_sys::rb_str_new(text.as_ptr().cast(), text.len() as _) };
    let index = unsafe { rb_sys::rb_utf8_encindex() } as rb_sys::VALUE;
    let range = if ascii { RUBY_ENC_CODERANGE_7BIT } else { RUBY_ENC_CODERANGE_VALID } as rb_sys::VALUE;
    let basic = v as *mut rb_sys::RBasic;
    // SAFETY: `v` is a String just made, seen by no one else yet. UTF-8's
    // index is below RUBY_ENCODING_INLINE_MAX, so it is kept in the flags.
    unsafe {
        let mask =
            RUBY_ENCODING_MASK as rb_sys::VALUE | rb_sys::ruby_coderange_type::RUBY_ENC_CODERANGE_MASK as rb_sys::VALUE;
        let flags = (*basic).flags & !mask;
        (*basic).flags = flags | (index << RUBY_ENCODING_SHIFT as u32) | range;
    }
    v
}

fn has_lone_surrogate(units: &[u16]) -> bool {
    char::decode_utf16(units.iter().copied()).any(|c| c.is_err())
}

/// A JS string with a lone surrogate, which UTF-8 cannot hold, for a
/// context made with `keep_lone_surrogates: true`: a UTF-16LE Ruby String
/// of its code units (as MiniRacer returns it), so no character is
/// replaced. Otherwise the surrogate becomes U+FFFD, as in every binding.
fn utf16le_str(units: &[u16]) -> Value {
    let bytes: Vec<u8> = units.iter().flat_map(|u| u.to_le_bytes()).collect();
    // SAFETY: the GVL is held; Ruby copies the bytes.
    unsafe {
        let enc = rb_sys::rb_enc_find(c"UTF-16LE".as_ptr());
        Value::from_raw(rb_sys::rb_enc_str_new(bytes.as_ptr().cast(), bytes.len() as _, enc))
    }
}

impl Sink for RbSink {
    fn undefined(&mut self) -> Result<(), Halt> {
        self.null()
    }
    fn null(&mut self) -> Result<(), Halt> {
        if !self.attached {
            return self.keep(pr::Value::Null);
        }
        self.place(Self::ruby().qnil().as_value())
    }
    fn bool(&mut self, b: bool) -> Result<(), Halt> {
        if !self.attached {
            return self.keep(pr::Value::Bool(b));
        }
        self.place(b.into_value_with(&Self::ruby()))
    }
    fn integer(&mut self, i: i64) -> Result<(), Halt> {
        if !self.attached {
            return self.keep(pr::Value::Integer(i));
        }
        self.place(Self::ruby().integer_from_i64(i).as_value())
    }
    fn number(&mut self, n: f64) -> Result<(), Halt> {
        if !self.attached {
            return self.keep(pr::Value::Number(n));
        }
        self.place(Self::ruby().float_from_f64(n).as_value())
    }
    fn bigint(&mut self, b: pr::BigInt) -> Result<(), Halt> {
        if !self.attached {
            return self.keep(pr::Value::BigInt(b));
        }
        let ruby = Self::ruby();
        let v = match i64::try_from(&b) {
            Ok(i) => Ok(ruby.integer_from_i64(i).as_value()),
            Err(_) => ruby.str_new(&b.to_string()).funcall::<_, _, Value>("to_i", ()),
        };
        match v {
            Ok(v) => self.place(v),
            Err(e) => self.fail(e),
        }
    }
    fn string(&mut self, s: JsStr<'_>) -> Result<(), Halt> {
        if !self.attached {
            if let JsStr::Utf16(units) = s {
                if self.keep_lone_surrogates
                    && has_lone_surrogate(units)
                    && self.stack.is_empty()
                    && self.pending.is_none()
                {
                    self.pending_utf16 = Some(units.to_vec());
                    return Ok(());
                }
            }
            return self.keep(pr::Value::String(s.to_str().into_owned()));
        }
        let v = self.rb_str(s, false);
        self.place(v)
    }
    fn latin1_strings(&mut self, items: &[&[u8]]) -> Result<(), Halt> {
        let array = match self.stack.last().map(|f| &f.open) {
            Some(Open::Array(a)) if self.attached => a.as_raw(),
            _ => {
                for s in items {
                    self.string(JsStr::Latin1(s))?;
                }
                return Ok(());
            }
        };
        // One loop, without `string`'s and `place`'s checks per item, and
        // the Strings appended in batches from the machine stack: Ruby's GC
        // scans the stack conservatively (it is how a C extension's local
        // VALUEs stay alive), so a String made into `batch` is safe there
        // until `rb_ary_cat` puts the batch in the Array, with one write
        // barrier for the batch instead of an `rb_ary_push` and a barrier
        // per String.
        const BATCH: usize = 128;
        let mut batch = [rb_sys::Qnil as rb_sys::VALUE; BATCH];
        for run in items.chunks(BATCH) {
            for (slot, s) in batch.iter_mut().zip(run) {
                let v = self.rb_str(JsStr::Latin1(s), false);
                // Volatile: the store reaches the stack before the next
                // String is made (whose allocation may run the GC).
                // SAFETY: `slot` is a valid, aligned element of `batch`.
                unsafe { std::ptr::write_volatile(slot, v.as_raw()) };
            }
            // SAFETY: as in `place`: the GVL is held, `array` is a new,
            // unfrozen Array this sink made, and the first `run.len()`
            // elements of `batch` are Strings it made.
            unsafe { rb_sys::rb_ary_cat(array, batch.as_ptr(), run.len() as _) };
        }
        Ok(())
    }
    fn date(&mut self, ms: f64) -> Result<(), Halt> {
        if !self.attached {
            return self.keep(pr::Value::Date(ms));
        }
        let ruby = Self::ruby();
        let secs = (ms / 1000.0).floor();
        let nanos = ((ms - secs * 1000.0) * 1e6).round();
        match ruby.time_nano_new(secs as i64, nanos as i64).and_then(|t| t.funcall::<_, _, Value>("utc", ())) {
            Ok(t) => self.place(t),
            Err(e) => self.fail(e),
        }
    }
    fn bytes(&mut self, b: &[u8]) -> Result<(), Halt> {
        if !self.attached {
            return self.keep(pr::Value::Bytes(pr::transfer::fresh_copy(b)));
        }
        // One copy, from V8's buffer into a binary String (allocated
        // uninitialised, then filled). Ruby frees Strings at a GC, many at
        // once, so the new one's memory is not in the cache.
        // SAFETY: on the Ruby thread; the new String owns `b.len()` bytes.
        let s = unsafe {
            let s = rb_sys::rb_enc_str_new(std::ptr::null(), b.len() as _, rb_sys::rb_ascii8bit_encoding());
            pr::transfer::copy_to_fresh(rb_sys::RSTRING_PTR(s) as *mut u8, b, pr::transfer::HostFrees::Collected);
            Value::from_raw(s)
        };
        self.place(s)
    }
    fn shares_bytes(&self) -> bool {
        self.share_bytes
    }
    fn shared_bytes(&mut self, b: pr::transfer::SharedBytes) -> Result<(), Halt> {
        if !self.attached {
            // Kept as a copy until the call returns, as `bytes` keeps them.
            // SAFETY: the walk holds the isolate: no JS writes meanwhile.
            return self.bytes(unsafe { b.as_slice() });
        }
        match crate::memory::io_buffer(&Self::ruby(), b) {
            Ok(v) => self.place(v),
            Err(e) => self.fail(e),
        }
    }
    fn error(&mut self, e: pr::ErrorValue) -> Result<(), Halt> {
        if !self.attached {
            return self.keep(pr::Value::Error(Box::new(e)));
        }
        let ruby = Self::ruby();
        match ruby.get_inner(&E_JS).new_instance((ruby.str_new(&e.message),)) {
            Ok(exc) => {
                ivar(exc.as_value(), c"@js_name", ruby.str_new(&e.name).as_value());
                ivar(exc.as_value(), c"@js_stack", ruby.str_new(&e.stack).as_value());
                self.place(exc.as_value())
            }
            Err(err) => self.fail(err),
        }
    }
    fn handle(&mut self, h: pr::JsHandle) -> Result<(), Halt> {
        if !self.attached {
            return self.keep(pr::Value::Handle(h));
        }
        let ruby = Self::ruby();
        let v = ruby.obj_wrap(JsRef { h, owner: self.owner }).as_value();
        self.place(v)
    }
    fn begin_array(&mut self, len: usize) -> Result<(), Halt> {
        // A JS length is not a promise of memory (`new Array(2 ** 32 - 1)`
        // is tiny in V8): reserve a bounded amount.
        let a = Self::ruby().ary_new_capa(len.min(1 << 16));
        self.open(Open::Array(a))
    }
    fn begin_object(&mut self, _len: usize) -> Result<(), Halt> {
        let h = Self::ruby().hash_new();
        self.open(Open::Hash(h, None))
    }
    fn key(&mut self, key: Key<'_>) -> Result<(), Halt> {
        let k = match self.keys.get(key.id as usize) {
            Some(k) => *k,
            None => {
                let k = self.rb_str(key.text, true);
                if key.id as usize == self.keys.len() {
                    self.keys.push(k);
                    let ruby = Self::ruby();
                    self.hold(&ruby, k);
                }
                k
            }
        };
        match self.stack.last_mut().map(|f| &mut f.open) {
            Some(Open::Hash(_, slot)) => {
                *slot = Some(k);
                Ok(())
            }
            _ => Err(Halt),
        }
    }
    fn begin_map(&mut self, _len: usize) -> Result<(), Halt> {
        let h = Self::ruby().hash_new();
        self.open(Open::Map(h, None))
    }
    fn begin_set(&mut self, len: usize) -> Result<(), Halt> {
        let a = Self::ruby().ary_new_capa(len.min(1 << 16));
        self.open(Open::Set(a))
    }
    fn end(&mut self) -> Result<(), Halt> {
        let ruby = Self::ruby();
        let v = match self.stack.pop() {
            Some(Frame { placed: true, .. }) => return Ok(()),
            Some(Frame { open: Open::Array(a), .. }) => a.as_value(),
            Some(Frame { open: Open::Hash(h, _) | Open::Map(h, _), .. }) => h.as_value(),
            Some(Frame { open: Open::Set(items), .. }) => match ruby.get_inner(&C_SET).new_instance((items,)) {
                Ok(s) => s,
                Err(e) => return self.fail(e),
            },
            None => return Err(Halt),
        };
        self.place(v)
    }
    fn one_pass(&self) -> bool {
        // Hashes are not presized (a Set's capacity is only a hint), and
        // what `restart` lets go of is only objects this sink made.
        true
    }
    fn restart(&mut self) {
        // Inside `enter` (the GVL is held): the partial objects become
        // garbage once no longer held.
        self.stack.clear();
        self.done = None;
        self.keep = None;
        // The walk gives key ids anew.
        self.keys.clear();
    }
    fn enter(&mut self, walk: &mut dyn FnMut(&mut dyn Sink)) {
        let was = self.attached;
        with_gvl(|_ruby| {
            // Ruby's GC stays on. Paused for the walk (as the Python binding
            // pauses its cyclic GC), nothing triggered it while most
            // allocation happened: each 1 MB result took fresh heap pages
            // and the heap grew ~4x in 20 calls; generational GC on cost
            // the same time and kept the heap flat.
            self.attached = true;
            walk(self);
            self.attached = was;
        });
    }
}

/// A kept `Value` as a Ruby object (results of awaits, handle reads);
/// `owner` is the `Polyracer::Context` new handles keep alive.
pub(crate) fn value_to_rb(ruby: &Ruby, owner: Value, v: pr::Value) -> Result<Value, Error> {
    let mut sink = RbSink::new(owner);
    sink.attached = true;
    if v.emit(&mut sink).is_err() {
        return Err(sink.take_error().unwrap_or_else(|| conversion_error(ruby, "conversion failed")));
    }
    sink.finish(ruby)
}
