//! Moving values (issue 12): the serializer fast path gives exactly what
//! the property-by-property walk gives, for generated JS values; hostile
//! values stay bounded; sinks and sources see what they should.

use std::time::Duration;

use polyracer::transfer::{Arg, Halt, HostFrees, HostRef, JsStr, Key, Read, Sink, Source, ValueSink};
use polyracer::{Context, ContextOptions, Error, EvalOptions, Value};
use proptest::prelude::*;

use super::ctx;

/// A JS expression for a value, generated.
fn js_value() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("undefined".to_string()),
        Just("null".to_string()),
        Just("true".to_string()),
        Just("false".to_string()),
        Just("-0".to_string()),
        Just("NaN".to_string()),
        Just("Infinity".to_string()),
        Just("2 ** 31".to_string()),
        Just("2 ** 53 + 2".to_string()),
        Just("-(2 ** 31) - 1".to_string()),
        Just("1e300".to_string()),
        Just("0.1".to_string()),
        any::<i32>().prop_map(|i| i.to_string()),
        any::<i64>().prop_map(|i| format!("{i}n")),
        Just("-(2n ** 100n)".to_string()),
        Just("''".to_string()),
        Just("'plain'".to_string()),
        Just("'caf\\u00e9'".to_string()),
        Just("'\\u{1F30D} two-byte'".to_string()),
        Just("'lone \\uD800 surrogate'".to_string()),
        Just("'\\uFEFF starts with a BOM'".to_string()),
        Just("new Date(1600000000123)".to_string()),
        Just("new Number(4.5)".to_string()),
        Just("new String('boxed')".to_string()),
        Just("new Boolean(false)".to_string()),
        Just("Object(7n)".to_string()),
        Just("new Uint8Array([1, 2, 3]).subarray(1)".to_string()),
        Just("new Float64Array([1.5, -2])".to_string()),
        Just("new DataView(new Uint8Array([5, 6, 7]).buffer, 1)".to_string()),
        Just("new Uint8Array(200).fill(9).buffer".to_string()),
        Just("new ArrayBuffer(4, { maxByteLength: 16 })".to_string()),
        "[a-z]{1,8}".prop_map(|s| format!("'{s}'")),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        let key = prop_oneof![
            "[a-z]{1,6}".prop_map(|s| format!("'{s}'")),
            Just("'0'".to_string()),
            Just("'7'".to_string()),
            Just("'01'".to_string()),
            Just("'-1'".to_string()),
            Just("'1.5'".to_string()),
            Just("'4294967295'".to_string()),
            Just("'caf\\u00e9'".to_string()),
            Just("'\\u{1F30D}'".to_string()),
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(|v| format!("[{}]", v.join(", "))),
            // Holey: a hole in the middle.
            prop::collection::vec(inner.clone(), 1..4).prop_map(|v| format!("[{}, , {}]", v.join(", "), v[0])),
            // Holey by construction (serialized sparsely by V8).
            prop::collection::vec(inner.clone(), 1..4).prop_map(|v| {
                format!("(() => {{ const a = new Array({}); {} return a; }})()", v.len() + 2, {
                    v.iter().enumerate().map(|(i, x)| format!("a[{i}] = {x};")).collect::<String>()
                })
            }),
            // An array with a named property (not part of the copy).
            inner.clone().prop_map(|x| format!("Object.assign([{x}], {{ extra: 1 }})")),
            prop::collection::vec((key, inner.clone()), 0..6).prop_map(|kv| {
                format!("({{{}}})", kv.iter().map(|(k, v)| format!("[{k}]: {v}")).collect::<Vec<_>>().join(", "))
            }),
            prop::collection::vec((inner.clone(), inner.clone()), 0..4).prop_map(|kv| {
                format!("new Map([{}])", kv.iter().map(|(k, v)| format!("[{k}, {v}]")).collect::<Vec<_>>().join(", "))
            }),
            prop::collection::vec(inner.clone(), 0..4).prop_map(|v| format!("new Set([{}])", v.join(", "))),
            // A class instance: its own properties only.
            inner.clone().prop_map(|x| format!("new (class {{ constructor() {{ this.v = {x}; }} m() {{}} }})()")),
            // A getter (run once per copy) and a non-enumerable property.
            inner.prop_map(|x| {
                format!("Object.defineProperty({{ get g() {{ return {x}; }} }}, 'hidden', {{ value: 1 }})")
            }),
        ]
    })
}

/// `Value` equality that also tells `-0` from `0` and NaN from NaN.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()),
        (Value::Array(x), Value::Array(y)) | (Value::Set(x), Value::Set(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|((ka, a), (kb, b))| ka == kb && same(a, b))
        }
        (Value::Map(x), Value::Map(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|((ka, a), (kb, b))| same(ka, kb) && same(a, b))
        }
        _ => a == b,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// The fast path (V8's serializer, decoded) and the walk (forced: a
    /// function beside the value makes the serializer refuse it) agree.
    #[test]
    fn fast_path_equals_the_walk(src in js_value()) {
        let c = ctx();
        let fast = c.eval(&format!("[{src}]"));
        let walked = c.eval(&format!("({{ v: [{src}], f() {{}} }})")).map(|o| o.get("v").cloned().unwrap_or_default());
        match (fast, walked) {
            (Ok(f), Ok(w)) => prop_assert!(same(&f, &w), "{src}\nfast:   {f:?}\nwalked: {w:?}"),
            (Err(f), Err(w)) => prop_assert_eq!(f.to_string(), w.to_string()),
            (f, w) => prop_assert!(false, "{src}\nfast: {f:?}\nwalked: {w:?}"),
        }
    }
}

/// A sink that takes plain data in one pass (`Sink::one_pass`, as Node's
/// does): a `ValueSink` that starts over when told to, counting restarts.
/// It checks the wire's contract as Node's sink relies on it: `end_wire`
/// gets the slice `begin_wire` got, they do not nest, and every Latin-1
/// string in between lies within it.
#[derive(Default)]
struct OnePass(ValueSink, usize, Option<(usize, usize)>);

impl OnePass {
    fn eval(c: &Context, src: &str) -> Result<(Value, usize), Error> {
        let mut sink = OnePass::default();
        c.eval_into(src, EvalOptions::default(), &mut sink)?;
        assert!(sink.2.is_none(), "begin_wire without end_wire");
        Ok((sink.0.finish(), sink.1))
    }

    fn check_in_wire(&self, b: &[u8]) {
        if let Some((at, len)) = self.2 {
            let p = b.as_ptr() as usize;
            assert!(p >= at && p + b.len() <= at + len, "a Latin-1 string outside the wire");
        }
    }
}

impl Sink for OnePass {
    fn undefined(&mut self) -> Result<(), Halt> {
        self.0.undefined()
    }
    fn null(&mut self) -> Result<(), Halt> {
        self.0.null()
    }
    fn bool(&mut self, b: bool) -> Result<(), Halt> {
        self.0.bool(b)
    }
    fn integer(&mut self, i: i64) -> Result<(), Halt> {
        self.0.integer(i)
    }
    fn number(&mut self, n: f64) -> Result<(), Halt> {
        self.0.number(n)
    }
    fn bigint(&mut self, b: polyracer::BigInt) -> Result<(), Halt> {
        self.0.bigint(b)
    }
    fn string(&mut self, s: JsStr<'_>) -> Result<(), Halt> {
        if let JsStr::Latin1(b) = s {
            self.check_in_wire(b);
        }
        self.0.string(s)
    }
    fn latin1_strings(&mut self, items: &[&[u8]]) -> Result<(), Halt> {
        assert!(!items.is_empty(), "an empty run");
        for b in items {
            self.check_in_wire(b);
            self.0.string(JsStr::Latin1(b))?;
        }
        Ok(())
    }
    fn begin_wire(&mut self, wire: &[u8]) {
        assert!(self.2.is_none(), "begin_wire twice");
        self.2 = Some((wire.as_ptr() as usize, wire.len()));
    }
    fn end_wire(&mut self, wire: &[u8]) -> Result<(), Halt> {
        assert_eq!(self.2.take(), Some((wire.as_ptr() as usize, wire.len())), "end_wire of another slice");
        Ok(())
    }
    fn date(&mut self, ms: f64) -> Result<(), Halt> {
        self.0.date(ms)
    }
    fn bytes(&mut self, b: &[u8]) -> Result<(), Halt> {
        self.0.bytes(b)
    }
    fn error(&mut self, e: polyracer::ErrorValue) -> Result<(), Halt> {
        self.0.error(e)
    }
    fn handle(&mut self, h: polyracer::JsHandle) -> Result<(), Halt> {
        self.0.handle(h)
    }
    fn begin_array(&mut self, len: usize) -> Result<(), Halt> {
        self.0.begin_array(len)
    }
    fn begin_object(&mut self, len: usize) -> Result<(), Halt> {
        self.0.begin_object(len)
    }
    fn key(&mut self, key: Key<'_>) -> Result<(), Halt> {
        self.0.key(key)
    }
    fn begin_map(&mut self, len: usize) -> Result<(), Halt> {
        self.0.begin_map(len)
    }
    fn begin_set(&mut self, len: usize) -> Result<(), Halt> {
        self.0.begin_set(len)
    }
    fn end(&mut self) -> Result<(), Halt> {
        self.0.end()
    }
    fn enter(&mut self, walk: &mut dyn FnMut(&mut dyn Sink)) {
        walk(self)
    }
    fn one_pass(&self) -> bool {
        true
    }
    fn restart(&mut self) {
        self.0 = ValueSink::new();
        self.1 += 1;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// A one-pass sink gets what a checked pass gives, whether the decoder
    /// finishes or falls back to the walk partway (a sparse array or a
    /// shared object after some items: the sink must have restarted).
    #[test]
    fn one_pass_equals_the_checked_pass(src in js_value(), tail in 0usize..4) {
        let tails = ["", ", (() => { const a = []; a[100000] = 1; return a })()", ", globalThis.shared, globalThis.shared", ", new Error('e')"];
        let c = ctx();
        c.eval("globalThis.shared = { n: 1 }; 0").unwrap();
        let src = format!("[{src}{}]", tails[tail]);
        match (OnePass::eval(&c, &src), c.eval(&src)) {
            (Ok((once, restarts)), Ok(checked)) => {
                prop_assert!(same(&once, &checked), "{src}\none pass: {once:?}\nchecked:  {checked:?}");
                prop_assert!(tail == 0 || restarts == 1, "{src}: {restarts} restarts");
            }
            (Err(o), Err(w)) => prop_assert_eq!(o.to_string(), w.to_string()),
            (o, w) => prop_assert!(false, "{src}\none pass: {o:?}\nchecked: {w:?}"),
        }
    }
}

#[test]
fn values_the_fast_path_leaves_to_the_walk_keep_their_rules() {
    let c = ctx();
    // Shared (not cyclic) objects are copied twice; cycles name their path.
    let v = c.eval("const s = { n: 1 }; [s, s]").unwrap();
    assert_eq!(v, Value::Array(vec![super::obj(&[("n", 1.into())]), super::obj(&[("n", 1.into())])]));
    match c.eval("const o = { a: { b: [0] } }; o.a.b[0] = o; o") {
        Err(Error::Conversion(m)) => assert_eq!(m, "cyclic reference at $.a.b[0]"),
        other => panic!("{other:?}"),
    }
    // An Invalid Date deep inside names its path.
    match c.eval("({ list: [1, { when: new Date(NaN) }] })") {
        Err(Error::Conversion(m)) => assert_eq!(m, "invalid Date (its time value is NaN) at $.list[1].when"),
        other => panic!("{other:?}"),
    }
    // Errors, functions and symbols inside data.
    let v = c.eval("({ e: new RangeError('r'), f() {}, s: Symbol('x') })").unwrap();
    assert!(matches!(v.get("e"), Some(Value::Error(e)) if e.name == "RangeError" && e.message == "r"));
    assert!(matches!(v.get("f"), Some(Value::Handle(_))));
    assert!(matches!(v.get("s"), Some(Value::Handle(_))));
    // Nesting past the limit is an error, not a crash, either way.
    for src in [
        "let d1 = []; for (let i = 0; i < 5000; i++) d1 = [d1]; d1",
        "let d2 = {}; for (let i = 0; i < 5000; i++) d2 = { d: d2 }; d2",
    ] {
        // (Or the test thread's stack ends first.)
        let r = c.eval(src);
        assert!(
            matches!(&r, Err(Error::Conversion(m)) if m.contains("nesting deeper than 2000") || m.contains("nested too deeply")),
            "{src}: {r:?}"
        );
    }
}

#[test]
fn a_getter_runs_once_per_copy_of_plain_data() {
    let c = ctx();
    c.eval("globalThis.n = 0; globalThis.o = { get g() { return ++n; }, list: [1, 2] }; 0").unwrap();
    assert_eq!(c.eval("o").unwrap().get("g"), Some(&Value::Integer(1)));
    assert_eq!(c.eval("n").unwrap(), Value::Integer(1));
}

#[test]
fn huge_sparse_arrays_are_bounded_by_the_timeout() {
    // `new Array(2 ** 32 - 1)` is a few bytes in V8 but four billion
    // elements to copy: the copy stops at the call's timeout.
    let c = ctx();
    let opts = EvalOptions { timeout: Some(Duration::from_millis(300)), ..Default::default() };
    let started = std::time::Instant::now();
    let r = c.eval_with("new Array(2 ** 32 - 1)", opts);
    assert!(matches!(r, Err(Error::Timeout)), "{r:?}");
    assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
    assert_eq!(c.eval("1 + 1").unwrap(), Value::Integer(2));
}

/// A sink that records events as text: what a binding's builder receives.
#[derive(Default)]
struct Trace(Vec<String>, usize);

impl Sink for Trace {
    fn undefined(&mut self) -> Result<(), Halt> {
        self.0.push("undefined".into());
        Ok(())
    }
    fn null(&mut self) -> Result<(), Halt> {
        self.0.push("null".into());
        Ok(())
    }
    fn bool(&mut self, b: bool) -> Result<(), Halt> {
        self.0.push(format!("{b}"));
        Ok(())
    }
    fn integer(&mut self, i: i64) -> Result<(), Halt> {
        self.0.push(format!("int {i}"));
        Ok(())
    }
    fn number(&mut self, n: f64) -> Result<(), Halt> {
        self.0.push(format!("num {n}"));
        Ok(())
    }
    fn bigint(&mut self, b: polyracer::BigInt) -> Result<(), Halt> {
        self.0.push(format!("bigint {b}"));
        Ok(())
    }
    fn string(&mut self, s: JsStr<'_>) -> Result<(), Halt> {
        let kind = if matches!(s, JsStr::Latin1(_)) { "latin1" } else { "utf16" };
        self.0.push(format!("{kind} {}", s.to_str()));
        Ok(())
    }
    fn latin1_strings(&mut self, items: &[&[u8]]) -> Result<(), Halt> {
        let texts: Vec<String> = items.iter().map(|b| JsStr::Latin1(b).to_str().into_owned()).collect();
        self.0.push(format!("latin1 run {}", texts.join("|")));
        Ok(())
    }
    fn begin_wire(&mut self, _wire: &[u8]) {
        self.0.push("begin wire".into());
    }
    fn end_wire(&mut self, _wire: &[u8]) -> Result<(), Halt> {
        self.0.push("end wire".into());
        Ok(())
    }
    fn date(&mut self, ms: f64) -> Result<(), Halt> {
        self.0.push(format!("date {ms}"));
        Ok(())
    }
    fn bytes(&mut self, b: &[u8]) -> Result<(), Halt> {
        self.0.push(format!("bytes {b:?}"));
        Ok(())
    }
    fn error(&mut self, e: polyracer::ErrorValue) -> Result<(), Halt> {
        self.0.push(format!("error {}", e.name));
        Ok(())
    }
    fn handle(&mut self, h: polyracer::JsHandle) -> Result<(), Halt> {
        self.0.push(format!("handle {}", h.kind().name()));
        Ok(())
    }
    fn begin_array(&mut self, len: usize) -> Result<(), Halt> {
        self.0.push(format!("array {len}"));
        Ok(())
    }
    fn begin_object(&mut self, len: usize) -> Result<(), Halt> {
        self.0.push(format!("object {len}"));
        Ok(())
    }
    fn key(&mut self, key: Key<'_>) -> Result<(), Halt> {
        self.0.push(format!("key {} #{}", key.text.to_str(), key.id));
        Ok(())
    }
    fn begin_map(&mut self, len: usize) -> Result<(), Halt> {
        self.0.push(format!("map {len}"));
        Ok(())
    }
    fn begin_set(&mut self, len: usize) -> Result<(), Halt> {
        self.0.push(format!("set {len}"));
        Ok(())
    }
    fn end(&mut self) -> Result<(), Halt> {
        self.0.push("end".into());
        Ok(())
    }
    fn enter(&mut self, walk: &mut dyn FnMut(&mut dyn Sink)) {
        self.1 += 1;
        walk(self)
    }
}

#[test]
fn sinks_get_exact_lengths_interned_key_ids_and_enter_only_when_needed() {
    let c = ctx();
    for forced_walk in [false, true] {
        let mut t = Trace::default();
        let src = if forced_walk {
            // A getter that throws the first time: V8's serializer gives
            // up, and the walk reads it again.
            "[{ id: 1, get name() { if (!globalThis.thrown) { globalThis.thrown = 1; throw 0 } return 'a' } }, \
             { id: 2, name: 'caf\\u00e9' }]"
        } else {
            "[{ id: 1, name: 'a' }, { id: 2, name: 'caf\\u00e9' }]"
        };
        c.eval_into(src, EvalOptions::default(), &mut t).unwrap();
        assert_eq!(t.1, 1, "one enter around the walk");
        // The fast path's events come between the wire's begin and end.
        let events = if forced_walk { &t.0[..] } else { &t.0[1..t.0.len() - 1] };
        if !forced_walk {
            assert_eq!((t.0[0].as_str(), t.0[t.0.len() - 1].as_str()), ("begin wire", "end wire"));
        }
        assert_eq!(
            events,
            [
                "array 2",
                "object 2",
                "key id #0",
                "int 1",
                "key name #1",
                "latin1 a",
                "end",
                "object 2",
                "key id #0",
                "int 2",
                "key name #1",
                "latin1 café",
                "end",
                "end"
            ],
            "forced walk: {forced_walk}"
        );
    }
    // An array's Latin-1 strings come as runs, in one call each, from
    // V8's serialized copy (the wire); the walk gives them one by one.
    let mut t = Trace::default();
    c.eval_into("['a', 'b', 1, 'c', '\\u0100', '', 'd', ['e']]", EvalOptions::default(), &mut t).unwrap();
    assert_eq!(
        t.0,
        [
            "begin wire",
            "array 8",
            "latin1 run a|b",
            "int 1",
            "latin1 run c",
            "utf16 Ā",
            "latin1 run |d",
            "array 1",
            "latin1 run e",
            "end",
            "end",
            "end wire"
        ]
    );
    // A scalar root needs no host lock.
    let mut t = Trace::default();
    c.eval_into("40 + 2", EvalOptions::default(), &mut t).unwrap();
    assert_eq!((t.0.as_slice(), t.1), (&["int 42".to_string()][..], 0));
    // Two-byte strings arrive as UTF-16.
    let mut t = Trace::default();
    c.eval_into("'\\u{1F30D}'", EvalOptions::default(), &mut t).unwrap();
    assert_eq!(t.0, ["utf16 🌍"]);
}

#[test]
fn a_halting_sink_fails_the_call_and_the_context_goes_on() {
    struct Stops;
    impl Sink for Stops {
        fn undefined(&mut self) -> Result<(), Halt> {
            Err(Halt)
        }
        fn null(&mut self) -> Result<(), Halt> {
            Err(Halt)
        }
        fn bool(&mut self, _: bool) -> Result<(), Halt> {
            Err(Halt)
        }
        fn integer(&mut self, _: i64) -> Result<(), Halt> {
            Err(Halt)
        }
        fn number(&mut self, _: f64) -> Result<(), Halt> {
            Err(Halt)
        }
        fn bigint(&mut self, _: polyracer::BigInt) -> Result<(), Halt> {
            Err(Halt)
        }
        fn string(&mut self, _: JsStr<'_>) -> Result<(), Halt> {
            Err(Halt)
        }
        fn date(&mut self, _: f64) -> Result<(), Halt> {
            Err(Halt)
        }
        fn bytes(&mut self, _: &[u8]) -> Result<(), Halt> {
            Err(Halt)
        }
        fn error(&mut self, _: polyracer::ErrorValue) -> Result<(), Halt> {
            Err(Halt)
        }
        fn handle(&mut self, _: polyracer::JsHandle) -> Result<(), Halt> {
            Err(Halt)
        }
        fn begin_array(&mut self, _: usize) -> Result<(), Halt> {
            Ok(())
        }
        fn begin_object(&mut self, _: usize) -> Result<(), Halt> {
            Ok(())
        }
        fn key(&mut self, _: Key<'_>) -> Result<(), Halt> {
            Ok(())
        }
        fn begin_map(&mut self, _: usize) -> Result<(), Halt> {
            Ok(())
        }
        fn begin_set(&mut self, _: usize) -> Result<(), Halt> {
            Ok(())
        }
        fn end(&mut self) -> Result<(), Halt> {
            Ok(())
        }
        fn enter(&mut self, walk: &mut dyn FnMut(&mut dyn Sink)) {
            walk(self)
        }
    }
    let c = ctx();
    for src in ["[1, 2]", "({ a: [1], f() {} })", "7"] {
        assert!(matches!(c.eval_into(src, EvalOptions::default(), &mut Stops), Err(Error::Conversion(_))), "{src}");
    }
    assert_eq!(c.eval("1 + 1").unwrap(), Value::Integer(2));
}

/// A source over a tiny host model: `[u32; 2]` pairs name kinds and
/// children by index, as a binding's source names its host objects.
struct Host {
    nodes: Vec<Node>,
    entered: usize,
    /// What `stable_keys` answers.
    stable: bool,
}

enum Node {
    Num(f64),
    Str(&'static str),
    Latin1(&'static [u8]),
    Strings(JsStr<'static>, Vec<f64>),
    List(Vec<usize>),
    Obj(Vec<(usize, usize)>),
    Socket,
}

impl Source for Host {
    fn read(&mut self, v: HostRef) -> Result<Read<'_>, Halt> {
        Ok(match &self.nodes[v.0] {
            Node::Num(n) => Read::Number(*n),
            Node::Str(s) => Read::String(s),
            Node::Latin1(b) => Read::Latin1(b),
            Node::Strings(text, lens) => Read::Strings { text: *text, lens },
            Node::List(items) => Read::Array(items.len()),
            Node::Obj(props) => Read::Object(props.len()),
            Node::Socket => Read::Unsupported("cannot convert a socket to JavaScript".into()),
        })
    }
    fn items(&mut self, v: HostRef, out: &mut Vec<HostRef>) -> Result<(), Halt> {
        match &self.nodes[v.0] {
            Node::List(items) => out.extend(items.iter().map(|&i| HostRef(i))),
            _ => return Err(Halt),
        }
        Ok(())
    }
    fn entries(&mut self, v: HostRef, out: &mut Vec<(HostRef, HostRef)>) -> Result<(), Halt> {
        match &self.nodes[v.0] {
            Node::Obj(props) => out.extend(props.iter().map(|&(k, x)| (HostRef(k), HostRef(x)))),
            _ => return Err(Halt),
        }
        Ok(())
    }
    fn stable_keys(&self) -> bool {
        self.stable
    }
    fn enter(&mut self, walk: &mut dyn FnMut(&mut dyn Source)) {
        self.entered += 1;
        walk(self)
    }
}

#[test]
fn sources_are_read_once_with_paths_in_errors_and_cycles_found() {
    let c = ctx();
    // 0: { k: [1.5, "s"] }, with 3: a list that contains itself.
    let mut host = Host {
        nodes: vec![
            Node::Obj(vec![(1, 2)]),
            Node::Str("k"),
            Node::List(vec![4, 5]),
            Node::List(vec![6, 3]),
            Node::Num(1.5),
            Node::Str("s"),
            Node::Socket,
        ],
        entered: 0,
        stable: false,
    };
    let mut out = ValueSink::new();
    let args = [Arg::Host(HostRef(0)), Arg::Value(Value::Integer(2))];
    c.call_into("(o, n) => [o.k[0] * n, o.k[1]]", &mut host, &args, EvalOptions::default(), &mut out).unwrap();
    assert_eq!(out.finish(), Value::Array(vec![3.into(), "s".into()]));
    assert_eq!(host.entered, 1, "one enter for all arguments");
    let mut out = ValueSink::new();
    let r = c.call_into("(x) => x", &mut host, &[Arg::Host(HostRef(3))], EvalOptions::default(), &mut out);
    assert!(
        matches!(&r, Err(Error::Conversion(m)) if m == "cannot convert a socket to JavaScript at $[0][0]"),
        "{r:?}"
    );
    host.nodes[3] = Node::List(vec![3]);
    let r = c.call_into("(x) => x", &mut host, &[Arg::Host(HostRef(3))], EvalOptions::default(), &mut out);
    assert!(matches!(&r, Err(Error::Conversion(m)) if m == "cyclic reference at $[0][0]"), "{r:?}");
    // collect: the same rules into a Value.
    assert_eq!(polyracer::transfer::collect(&mut host, HostRef(0)).unwrap(), {
        super::obj(&[("k", Value::Array(vec![1.5.into(), "s".into()]))])
    });
}

#[test]
fn latin1_text_string_runs_and_stable_keys_from_a_source() {
    let c = ctx();
    let json = |host: &mut Host, root: usize| {
        let mut out = ValueSink::new();
        let r = c.call_into(
            "(x) => JSON.stringify(x)",
            host,
            &[Arg::Host(HostRef(root))],
            EvalOptions::default(),
            &mut out,
        );
        r.map(|()| out.finish())
    };
    // 0: [{ id: 1, "café": "ÿ" }, { id: 2, "café": runs }, { name: 3, x: 4 }]: the
    // first two records name the same key nodes; the third has others at
    // the same positions.
    let mut host = Host {
        nodes: vec![
            Node::List(vec![1, 2, 3]),
            Node::Obj(vec![(4, 6), (5, 7)]),
            Node::Obj(vec![(4, 8), (5, 9)]),
            Node::Obj(vec![(10, 11), (12, 13)]),
            Node::Str("id"),
            Node::Latin1(b"caf\xe9"),
            Node::Num(1.0),
            Node::Latin1(b"\xff"),
            Node::Num(2.0),
            Node::Strings(JsStr::Latin1(b"abcd\xe9"), vec![1.0, 2.0, 0.0, 2.0]),
            Node::Latin1(b"name"),
            Node::Num(3.0),
            Node::Str("x"),
            Node::Num(4.0),
        ],
        entered: 0,
        stable: true,
    };
    let want = r#"[{"id":1,"café":"ÿ"},{"id":2,"café":["a","bc","","dé"]},{"name":3,"x":4}]"#;
    assert_eq!(json(&mut host, 0).unwrap(), Value::String(want.into()));
    host.stable = false;
    assert_eq!(json(&mut host, 0).unwrap(), Value::String(want.into()));
    // UTF-16 runs reach JS as they are, lone surrogates too.
    const UNITS: &[u16] = &[0x68, 0x69, 0xD800, 0x263A];
    host.nodes[9] = Node::Strings(JsStr::Utf16(UNITS), vec![2.0, 1.0, 1.0]);
    let mut out = ValueSink::new();
    let codes = "(x) => x[1]['café'].map((s) => [...s].map((c) => c.charCodeAt(0)))";
    c.call_into(codes, &mut host, &[Arg::Host(HostRef(0))], EvalOptions::default(), &mut out).unwrap();
    let list = |v: &[i64]| Value::Array(v.iter().map(|&i| Value::Integer(i)).collect());
    assert_eq!(out.finish(), Value::Array(vec![list(&[0x68, 0x69]), list(&[0xD800]), list(&[0x263A])]));
    // Lengths that are not whole numbers or overrun the text are a
    // conversion error, never a panic.
    for lens in [vec![1.5], vec![2.0, 3.0], vec![-1.0], vec![f64::NAN]] {
        host.nodes[9] = Node::Strings(JsStr::Latin1(b"abcd"), lens.clone());
        let r = json(&mut host, 0);
        assert!(matches!(&r, Err(Error::Conversion(m)) if m.contains("malformed string lengths")), "{lens:?}: {r:?}");
    }
    // collect: the same into a Value.
    host.nodes[9] = Node::Strings(JsStr::Latin1(b"ab"), vec![1.0, 1.0]);
    let got = polyracer::transfer::collect(&mut host, HostRef(2)).unwrap();
    assert_eq!(got, super::obj(&[("id", 2.into()), ("café", Value::Array(vec!["a".into(), "b".into()]))]));
}

#[test]
fn bytes_cross_once_each_way_within_the_memory_limit() {
    let c = Context::new(ContextOptions { memory_limit: Some(64 << 20), ..Default::default() }).unwrap();
    let big = Value::Bytes(vec![7; 8 << 20]);
    assert_eq!(c.call("(b) => b.length", std::slice::from_ref(&big)).unwrap(), Value::Integer(8 << 20));
    assert_eq!(c.call("(b) => b", std::slice::from_ref(&big)).unwrap(), big);
    let too_big = Value::Bytes(vec![1; 80 << 20]);
    assert!(matches!(c.call("(b) => 0", &[too_big]), Err(Error::Conversion(m)) if m.contains("memory limit")));
}

/// A sink that keeps the shared bytes it gets (and the copies it gets).
#[derive(Default)]
struct Sharing {
    shared: Vec<polyracer::transfer::SharedBytes>,
    copied: Vec<Vec<u8>>,
}

impl Sink for Sharing {
    fn undefined(&mut self) -> Result<(), Halt> {
        Ok(())
    }
    fn null(&mut self) -> Result<(), Halt> {
        Ok(())
    }
    fn bool(&mut self, _: bool) -> Result<(), Halt> {
        Ok(())
    }
    fn integer(&mut self, _: i64) -> Result<(), Halt> {
        Ok(())
    }
    fn number(&mut self, _: f64) -> Result<(), Halt> {
        Ok(())
    }
    fn bigint(&mut self, _: polyracer::BigInt) -> Result<(), Halt> {
        Ok(())
    }
    fn string(&mut self, _: JsStr<'_>) -> Result<(), Halt> {
        Ok(())
    }
    fn date(&mut self, _: f64) -> Result<(), Halt> {
        Ok(())
    }
    fn bytes(&mut self, b: &[u8]) -> Result<(), Halt> {
        self.copied.push(b.to_vec());
        Ok(())
    }
    fn shares_bytes(&self) -> bool {
        true
    }
    fn shared_bytes(&mut self, b: polyracer::transfer::SharedBytes) -> Result<(), Halt> {
        self.shared.push(b);
        Ok(())
    }
    fn error(&mut self, _: polyracer::ErrorValue) -> Result<(), Halt> {
        Ok(())
    }
    fn handle(&mut self, _: polyracer::JsHandle) -> Result<(), Halt> {
        Ok(())
    }
    fn begin_array(&mut self, _: usize) -> Result<(), Halt> {
        Ok(())
    }
    fn begin_object(&mut self, _: usize) -> Result<(), Halt> {
        Ok(())
    }
    fn key(&mut self, _: Key<'_>) -> Result<(), Halt> {
        Ok(())
    }
    fn begin_map(&mut self, _: usize) -> Result<(), Halt> {
        Ok(())
    }
    fn begin_set(&mut self, _: usize) -> Result<(), Halt> {
        Ok(())
    }
    fn end(&mut self) -> Result<(), Halt> {
        Ok(())
    }
    fn enter(&mut self, walk: &mut dyn FnMut(&mut dyn Sink)) {
        walk(self)
    }
}

#[test]
fn shared_bytes_are_the_sandbox_memory_and_outlive_the_context() {
    let c = ctx();
    c.eval("globalThis.buf = new Uint8Array(1 << 20).fill(7); buf[5] = 9; 0").unwrap();
    // Every kind of buffer and view, at the root and nested (the nested
    // ones bypass the serializer's copy), small on-heap arrays included.
    let mut s = Sharing::default();
    let src = "[buf, buf.subarray(4, 8), new DataView(buf.buffer, 1, 2), buf.buffer, new Uint16Array([1, 2]), \
               new SharedArrayBuffer(3), new Uint8Array(0)]";
    c.eval_into(src, EvalOptions::default(), &mut s).unwrap();
    assert!(s.copied.is_empty(), "{} copied", s.copied.len());
    let lens: Vec<usize> = s.shared.iter().map(|b| b.len()).collect();
    assert_eq!(lens, [1 << 20, 4, 2, 1 << 20, 4, 3, 0]);
    let [whole, sub, ..] = &s.shared[..] else { unreachable!() };
    assert_eq!(sub.as_ptr() as usize - whole.as_ptr() as usize, 4, "a view shares its buffer's memory");
    // SAFETY: no JS runs while the slice is read.
    assert_eq!(unsafe { sub.as_slice() }, [7, 9, 7, 7]);
    // Writes show through, both ways.
    // SAFETY: within the buffer, and no JS runs meanwhile.
    unsafe { *whole.as_ptr().add(6) = 42 };
    assert_eq!(c.eval("buf[6]").unwrap(), Value::Integer(42));
    c.eval("buf[4] = 1").unwrap();
    assert_eq!(unsafe { sub.as_slice() }[0], 1);
    // The root alone shares too; a resizable buffer is copied.
    let mut root = Sharing::default();
    c.eval_into("buf", EvalOptions::default(), &mut root).unwrap();
    assert_eq!(root.shared[0].as_ptr(), whole.as_ptr());
    let mut rs = Sharing::default();
    c.eval_into("[new ArrayBuffer(2, { maxByteLength: 16 })]", EvalOptions::default(), &mut rs).unwrap();
    assert_eq!((rs.shared.len(), rs.copied), (0, vec![vec![0, 0]]));
    // The memory outlives JS's reference and the context.
    c.eval("buf = null").unwrap();
    c.dispose();
    drop(c);
    let kept = s.shared.swap_remove(0);
    drop(s);
    // SAFETY: the context is gone; nothing else writes.
    let bytes = unsafe { kept.as_slice() };
    assert_eq!((bytes.len(), bytes[5], bytes[6], bytes[(1 << 20) - 1]), (1 << 20, 9, 42, 7));
}

/// Bytes of `len` that a copy which shifted, dropped or doubled a page
/// would change: the period, 251, does not divide 4096.
fn patterned(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8 ^ seed).collect()
}

/// A JS function giving a byte array's length and a hash of its bytes, and
/// what it should give for `bytes`.
const JS_CHECKSUM: &str =
    "(b) => { let h = 0; for (let i = 0; i < b.length; i++) h = (h * 31 + b[i]) | 0; return [b.length, h] }";
fn checksum(bytes: &[u8]) -> Value {
    let h = bytes.iter().fold(0i32, |h, &b| h.wrapping_mul(31).wrapping_add(b as i32));
    Value::Array(vec![(bytes.len() as i64).into(), (h as i64).into()])
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 10, failure_persistence: None, ..ProptestConfig::default() })]

    /// Large buffers (from 32 MiB) are copied into memory advised for huge
    /// pages in 2 MiB chunks on two threads, and medium ones (from 256 KiB)
    /// prefaulted and, for hosts that free at a collection, streamed in
    /// 64-byte lines from the first aligned one, over page-rounded ranges
    /// that depend on where the allocation starts and ends: sizes around
    /// both thresholds, at any offset, either way of freeing, arrive whole
    /// both ways.
    #[test]
    fn large_bytes_cross_whole(
        len in prop_oneof![(32usize << 20) - 5000..(33usize << 20) + 5000, (256usize << 10) - 5000..(256usize << 10) + 5000],
        off in 0usize..4097,
        seed: u8,
        collected: bool,
    ) {
        let src = patterned(len, seed);
        let mut dst = vec![0xAAu8; off + len + 16];
        let frees = if collected { HostFrees::Collected } else { HostFrees::Promptly };
        // SAFETY: `dst` has `len` bytes from `off`, and does not overlap `src`.
        unsafe { polyracer::transfer::copy_to_fresh(dst.as_mut_ptr().add(off), &src, frees) };
        prop_assert!(dst[..off].iter().chain(&dst[off + len..]).all(|&b| b == 0xAA), "written outside the range");
        prop_assert!(dst[off..off + len] == src[..], "copied wrong");
        let c = ctx();
        prop_assert_eq!(c.call(JS_CHECKSUM, &[Value::Bytes(src.clone())]).unwrap(), checksum(&src));
        c.set_global("b", Value::Bytes(src.clone())).unwrap();
        prop_assert!(c.eval("b").unwrap() == Value::Bytes(src), "the round trip changed the bytes");
    }
}

/// A medium copy for a host that frees at a collection is streamed in
/// 64-byte lines between edges copied plainly: from every start within a
/// line and with every kind of tail, the bytes arrive whole and nothing
/// outside the range is written.
#[test]
fn streamed_copies_arrive_whole_at_any_alignment() {
    for off in 0..64 {
        for extra in [0usize, 1, 15, 16, 17, 63, 64, 65] {
            let len = (256 << 10) + extra;
            let src = patterned(len, (off + extra) as u8);
            let mut dst = vec![0xAAu8; off + len + 64];
            // SAFETY: `dst` has `len` bytes from `off`, and does not overlap `src`.
            unsafe { polyracer::transfer::copy_to_fresh(dst.as_mut_ptr().add(off), &src, HostFrees::Collected) };
            assert!(
                dst[..off].iter().chain(&dst[off + len..]).all(|&b| b == 0xAA),
                "written outside, off {off} len {len}"
            );
            assert!(dst[off..off + len] == src[..], "copied wrong, off {off} len {len}");
        }
    }
}

/// The mappings of this process whose range overlaps `[lo, hi)`.
#[cfg(target_os = "linux")]
fn mappings_over(lo: usize, hi: usize) -> usize {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    maps.lines()
        .filter_map(|l| l.split(' ').next()?.split_once('-'))
        .filter_map(|(a, b)| Some((usize::from_str_radix(a, 16).ok()?, usize::from_str_radix(b, 16).ok()?)))
        .filter(|&(a, b)| a < hi && b > lo)
        .count()
}

/// In a process without transparent huge pages (as Ruby makes its own), a
/// large copy into a buffer glibc mapped for itself gets pages faulted in
/// beforehand, moved under the buffer, once a copy before it has had time
/// to have them made. Whatever the size and contents, the buffer then
/// holds exactly the bytes (the moved pages show as a mapping of their own
/// inside it), `realloc` keeps them when it grows and shrinks the buffer,
/// and once it is freed no mapping is left where it was.
#[cfg(all(target_os = "linux", target_env = "gnu", target_pointer_width = "64"))]
#[test]
fn large_copies_into_new_memory_take_ready_pages_and_free_cleanly() {
    // SAFETY: a flag on this process (each test is a process of its own
    // under nextest; elsewhere the other tests only lose huge pages).
    assert_eq!(unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) }, 0);
    let sizes = [100usize << 20, 64 << 20, (64 << 20) - 7, (40 << 20) + 123, (32 << 20) + 4095];
    let mut moved = 0;
    for round in 0..3 {
        for (i, &len) in sizes.iter().enumerate() {
            let src = patterned(len, (round * 7 + i) as u8);
            // SAFETY: plain malloc / realloc / free of buffers this test
            // owns; `dst` has `len` bytes that do not overlap `src`.
            unsafe {
                let dst = libc::malloc(len).cast::<u8>();
                assert!(!dst.is_null());
                polyracer::transfer::copy_to_fresh(dst, &src, HostFrees::Collected);
                assert!(std::slice::from_raw_parts(dst, len) == &src[..], "copied wrong, len {len}");
                let (lo, hi) = (dst as usize - 16, dst as usize + len);
                if mappings_over(lo, hi) > 1 {
                    moved += 1;
                }
                let grown = libc::realloc(dst.cast(), len + (3 << 20)).cast::<u8>();
                assert!(!grown.is_null());
                assert!(std::slice::from_raw_parts(grown, len) == &src[..], "realloc lost bytes, len {len}");
                let shrunk = libc::realloc(grown.cast(), len / 2).cast::<u8>();
                assert!(std::slice::from_raw_parts(shrunk, len / 2) == &src[..len / 2], "shrinking lost bytes");
                libc::free(shrunk.cast());
                assert_eq!(mappings_over(lo, hi), 0, "a mapping was left where the buffer was, len {len}");
            }
            // The host's own work between copies: time to make the next
            // copy's pages.
            std::thread::sleep(std::time::Duration::from_millis(150));
        }
    }
    // Each round's first copy is larger than the pages made after the
    // last one (the very first has none); the other twelve find theirs.
    assert!(moved >= 10, "pages were moved into {moved} of 15 copies");
}

/// The buffer V8 frees after one large or medium copy in is reused by the
/// next of about its size: what JS sees is exactly the new bytes, however
/// the sizes differ (shorter, equal, longer within the reuse range), and
/// many medium buffers freed at once are all kept or given back whole.
#[test]
fn a_reused_buffer_holds_only_the_new_bytes() {
    let large = [(33usize << 20) + 77, 33 << 20, (33 << 20) - 4097, (33 << 20) + 300_000];
    let medium = [(1usize << 20) + 77, 1 << 20, (1 << 20) - 4097, 300_000, 262_144, 270_000, (5 << 20) + 3];
    for (i, len) in large.into_iter().chain(medium).enumerate() {
        let src = patterned(len, (i as u8).wrapping_mul(61).wrapping_add(1));
        let expect = checksum(&src);
        // A context of its own each time: disposing it frees the last
        // buffer, which the next copy may reuse.
        let c = ctx();
        assert_eq!(c.call(JS_CHECKSUM, &[Value::Bytes(src)]).unwrap(), expect);
        c.dispose();
    }
    // Forty 1 MiB buffers freed by one dispose: more than the pool holds.
    let c = ctx();
    let srcs: Vec<Vec<u8>> = (0..40u8).map(|i| patterned((1 << 20) + usize::from(i) * 1000, i)).collect();
    for src in &srcs {
        c.call("(b) => { (globalThis.kept ??= []).push(b); return 0 }", &[Value::Bytes(src.clone())]).unwrap();
    }
    c.dispose();
    for (i, src) in srcs.iter().rev().enumerate() {
        let c = ctx();
        assert_eq!(c.call(JS_CHECKSUM, &[Value::Bytes(src.clone())]).unwrap(), checksum(src), "copy {i}");
        c.dispose();
    }
}
