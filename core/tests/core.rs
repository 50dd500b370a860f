//! Integration tests for the core runtime. One test binary: each binary that
//! links V8 costs tens of seconds to link.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use polyracer::{Context, ContextOptions, Error, EvalOptions, HandleKind, HostError, Value};

fn ctx() -> Context {
    Context::new(ContextOptions::default()).unwrap()
}

fn obj(props: &[(&str, Value)]) -> Value {
    Value::Object(props.iter().map(|(k, v)| (k.to_string(), v.clone())).collect())
}

/// Asserts `r` failed with an error of `kind` (`Error::kind`) whose message
/// contains `needle`: any other error, of the right kind or not, is a bug.
#[track_caller]
fn assert_err<T: std::fmt::Debug>(r: polyracer::Result<T>, kind: &str, needle: &str) {
    match r {
        Err(e) if e.kind() == kind && e.to_string().contains(needle) => {}
        other => panic!("expected {kind} with a message containing {needle:?}, got {other:?}"),
    }
}

// ---------------------------------------------------------------- engine

#[test]
fn engine_reports_version_and_rejects_late_flags() {
    let c = ctx();
    assert_eq!(c.eval("1").unwrap(), Value::Integer(1));
    assert!(polyracer::v8_version().starts_with("14."), "{}", polyracer::v8_version());
    assert!(polyracer::is_initialized());
    let err = polyracer::set_flags(["--expose-gc"]).unwrap_err();
    match err {
        Error::InvalidArgument(m) => assert!(m.contains("--expose-gc") && m.contains("already initialised"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn icu_data_is_loaded() {
    let c = ctx();
    assert_eq!(c.eval("(1234567.891).toLocaleString('de-DE')").unwrap(), Value::from("1.234.567,891"));
    assert_eq!(
        c.eval("new Intl.DateTimeFormat('fr-FR', {timeZone: 'UTC', dateStyle: 'long'}).format(new Date(0))").unwrap(),
        Value::from("1 janvier 1970")
    );
    assert_eq!(c.eval("'\\u0041\\u030A'.normalize('NFC') === '\\u00C5'").unwrap(), Value::Bool(true));
}

// ---------------------------------------------------------------- eval, call, globals

#[test]
fn eval_basic_values() {
    let c = ctx();
    assert_eq!(c.eval("1 + 1").unwrap(), Value::Integer(2));
    assert_eq!(c.eval("0.5").unwrap(), Value::Number(0.5));
    assert_eq!(c.eval("'hi'").unwrap(), Value::from("hi"));
    assert_eq!(c.eval("undefined").unwrap(), Value::Undefined);
    assert_eq!(c.eval("null").unwrap(), Value::Null);
    assert_eq!(c.eval("true").unwrap(), Value::Bool(true));
    assert!(matches!(c.eval("-0").unwrap(), Value::Number(n) if n == 0.0 && n.is_sign_negative()));
    assert!(matches!(c.eval("NaN").unwrap(), Value::Number(n) if n.is_nan()));
    assert_eq!(c.eval("2**53 - 1").unwrap(), Value::Integer((1 << 53) - 1));
    assert_eq!(c.eval("2**53").unwrap(), Value::Number(9007199254740992.0));
    assert_eq!(c.eval("-(2**53 - 1)").unwrap(), Value::Integer(-((1 << 53) - 1)));
}

#[test]
fn call_targets() {
    let c = ctx();
    assert_eq!(c.call("JSON.stringify", &[obj(&[("a", Value::Integer(1))])]).unwrap(), Value::from("{\"a\":1}"));
    assert_eq!(c.call("(a, b) => a + b", &[1.into(), 2.into()]).unwrap(), Value::Integer(3));
    c.eval("var a = {b: {c: function (x) { return this.tag + x; }, tag: 'T'}}").unwrap();
    assert_eq!(c.call("a.b.c", &["!".into()]).unwrap(), Value::from("T!"));
    let f = c.eval("(x) => x * 2").unwrap();
    let h = f.as_handle().unwrap();
    assert_eq!(h.kind(), HandleKind::Function);
    assert_eq!(c.call(h, &[21.into()]).unwrap(), Value::Integer(42));
    assert_eq!(h.call(&[4.into()]).unwrap(), Value::Integer(8));
    // Dotted paths are resolved without evaluating code: a getter that
    // would have side effects on eval still runs only as a property read.
    match c.call("a.missing.fn", &[]).unwrap_err() {
        Error::InvalidArgument(m) => assert!(m.contains("missing is undefined"), "{m}"),
        other => panic!("{other:?}"),
    }
    match c.call("a.b", &[]).unwrap_err() {
        Error::InvalidArgument(m) => assert!(m.contains("not a function"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn set_global_and_serde() {
    let c = ctx();
    c.set_global("config", obj(&[("n", 3.into()), ("list", vec![1, 2].into())])).unwrap();
    assert_eq!(c.eval("config.n + config.list.length").unwrap(), Value::Integer(5));
    c.set_global("ns.deep.value", 7).unwrap();
    assert_eq!(c.eval("ns.deep.value").unwrap(), Value::Integer(7));

    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    struct Point {
        x: i64,
        y: f64,
        label: String,
    }
    let p: Point = c.call_as("(x, y) => ({x, y, label: `${x},${y}`})", (3, 4.5)).unwrap();
    assert_eq!(p, Point { x: 3, y: 4.5, label: "3,4.5".into() });
    let back: Point = c.call_as("(p) => ({...p, x: p.x + 1})", (&p,)).unwrap();
    assert_eq!(back.x, 4);
    let n: u32 = c.eval_as("40 + 2").unwrap();
    assert_eq!(n, 42);
    let bad: Result<u32, _> = c.eval_as("'x'");
    assert_err(bad, "Conversion", "expected u32");
}

// ---------------------------------------------------------------- values

#[test]
fn value_round_trips() {
    let c = ctx();
    let id = c.eval("(x) => x").unwrap();
    let id = id.as_handle().unwrap();
    let big = "123456789012345678901234567890".parse::<polyracer::BigInt>().unwrap();
    let cases = vec![
        Value::Undefined,
        Value::Null,
        Value::Bool(false),
        Value::Integer(-5),
        Value::Number(1.25),
        Value::BigInt(big.clone()),
        Value::BigInt(-big),
        Value::from("héllo 🌍"),
        Value::Date(1_600_000_000_123.0),
        Value::Bytes(vec![0, 1, 255]),
        Value::Array(vec![1.into(), "two".into(), Value::Null]),
        obj(&[("z", 1.into()), ("a", 2.into()), ("m", obj(&[("nested", true.into())]))]),
        Value::Map(vec![(1.into(), "one".into()), ("k".into(), Value::Array(vec![]))]),
        Value::Set(vec![1.into(), "x".into()]),
    ];
    for v in cases {
        assert_eq!(id.call(std::slice::from_ref(&v)).unwrap(), v);
    }
    // Integers beyond 2^53 go to JS as BigInt and come back as BigInt.
    assert_eq!(c.call("(x) => typeof x", &[Value::from(1u64 << 60)]).unwrap(), Value::from("bigint"));
    assert_eq!(c.call("(x) => typeof x", &[Value::from(1u64 << 40)]).unwrap(), Value::from("number"));
    assert_eq!(c.eval("2n ** 70n").unwrap(), Value::BigInt(polyracer::BigInt::from(1u128 << 70)));
    assert_eq!(c.eval("5n").unwrap(), Value::BigInt(5.into()));
}

#[test]
fn js_specific_values() {
    let c = ctx();
    assert_eq!(c.eval("new Date(0)").unwrap(), Value::Date(0.0));
    assert_eq!(c.eval("new Uint16Array([1, 2])").unwrap(), Value::Bytes(vec![1, 0, 2, 0]));
    assert_eq!(c.eval("new Uint8Array([1,2,3,4]).subarray(1, 3)").unwrap(), Value::Bytes(vec![2, 3]));
    assert_eq!(c.eval("new Uint8Array([9, 8]).buffer").unwrap(), Value::Bytes(vec![9, 8]));
    assert_eq!(c.eval("new DataView(new ArrayBuffer(2))").unwrap(), Value::Bytes(vec![0, 0]));
    assert_eq!(c.eval("new Number(3)").unwrap(), Value::Integer(3));
    assert_eq!(c.eval("[1, , 3]").unwrap(), Value::Array(vec![1.into(), Value::Undefined, 3.into()]));
    assert_eq!(c.eval("({b: 1, a: 2, 1: 'x'})").unwrap(), obj(&[("1", "x".into()), ("b", 1.into()), ("a", 2.into())]));
    assert_eq!(c.eval("({[Symbol('s')]: 1, v: 2})").unwrap(), obj(&[("v", 2.into())]));
    match c.eval("new TypeError('bad')").unwrap() {
        Value::Error(e) => {
            assert_eq!(e.name, "TypeError");
            assert_eq!(e.message, "bad");
            assert!(e.stack.starts_with("TypeError: bad"));
        }
        other => panic!("{other:?}"),
    }
    let sym = c.eval("Symbol('tag')").unwrap();
    let sym = sym.as_handle().unwrap();
    assert_eq!(sym.kind(), HandleKind::Symbol);
    assert_eq!(sym.to_js_string().unwrap(), "tag");
    assert_eq!(c.eval("new Proxy({}, {})").unwrap().as_handle().unwrap().kind(), HandleKind::Object);
    let p = c.eval("Promise.resolve(1)").unwrap();
    assert_eq!(p.as_handle().unwrap().kind(), HandleKind::Promise);
}

#[test]
fn lone_surrogates_become_replacement_characters() {
    let c = ctx();
    assert_eq!(c.eval("'a\\uD800b'").unwrap(), Value::from("a\u{FFFD}b"));
    assert_eq!(c.eval("'\\uDC00'.length").unwrap(), Value::Integer(1));
    // Valid pairs survive both ways.
    assert_eq!(c.call("(s) => s.length", &["😀".into()]).unwrap(), Value::Integer(2));
}

#[test]
fn cyclic_and_deep_structures_give_conversion_errors() {
    let c = ctx();
    match c.eval("const o = {a: {b: []}}; o.a.b.push(o); o").unwrap_err() {
        Error::Conversion(m) => assert!(m.contains("cyclic") && m.contains("$.a.b[0]"), "{m}"),
        other => panic!("{other:?}"),
    }
    // Shared (non-cyclic) references are fine.
    assert_eq!(
        c.eval("const s = {v: 1}; [s, s]").unwrap(),
        Value::Array(vec![obj(&[("v", 1.into())]), obj(&[("v", 1.into())])])
    );
    match c.eval("let d = []; for (let i = 0; i < 10000; i++) d = [d]; d").unwrap_err() {
        Error::Conversion(m) => assert!(m.contains("deeper than"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(c.eval("JSON.stringify(d).length").unwrap(), Value::Integer(20002));
    let mut v = Value::Null;
    for _ in 0..10_000 {
        v = Value::Array(vec![v]);
    }
    match c.call("(x) => 1", &[v]).unwrap_err() {
        Error::Conversion(m) => assert!(m.contains("deeper than"), "{m}"),
        other => panic!("{other:?}"),
    }
    let mut ok = Value::Null;
    for _ in 0..1000 {
        ok = Value::Array(vec![ok]);
    }
    assert_eq!(c.call("(x) => JSON.stringify(x).length", &[ok.clone()]).unwrap(), Value::Integer(2004));
    assert_eq!(c.call("(x) => x", &[ok.clone()]).unwrap(), ok);
}

#[test]
fn huge_strings() {
    let c = ctx();
    let s = "x".repeat(100 << 20);
    assert_eq!(c.call("(s) => s.length", &[s.into()]).unwrap(), Value::Integer(100 << 20));
    match c.eval("'y'.repeat(100 * 1024 * 1024)").unwrap() {
        Value::String(s) => assert_eq!(s.len(), 100 << 20),
        other => panic!("{}", other.kind()),
    }
    // Beyond V8's maximum string length: a JS RangeError, not a crash.
    match c.eval("'z'.repeat(2 ** 30)").unwrap_err() {
        Error::Js(e) => assert_eq!(e.name, "RangeError"),
        other => panic!("{other:?}"),
    }
}

// ---------------------------------------------------------------- handles

#[test]
fn handle_operations() {
    let c = ctx();
    let o = c.eval_with("({a: 1, list: [1, 2, 3]})", EvalOptions { as_handle: true, ..Default::default() }).unwrap();
    let o = o.as_handle().unwrap().clone();
    assert_eq!(o.kind(), HandleKind::Object);
    assert_eq!(o.get("a").unwrap(), Value::Integer(1));
    o.set("b", "two").unwrap();
    assert_eq!(o.keys().unwrap(), vec!["a", "list", "b"]);
    assert!(o.delete("a").unwrap());
    assert_eq!(o.keys().unwrap(), vec!["list", "b"]);
    assert_eq!(o.to_value().unwrap(), obj(&[("list", vec![1, 2, 3].into()), ("b", "two".into())]));
    let arr = c.eval_with("[10, 20, 30]", EvalOptions { as_handle: true, ..Default::default() }).unwrap();
    let arr = arr.as_handle().unwrap();
    assert_eq!(arr.kind(), HandleKind::Array);
    assert_eq!(arr.length().unwrap(), 3);
    assert_eq!(arr.get(1).unwrap(), Value::Integer(20));
    arr.set(3, 40).unwrap();
    assert_eq!(arr.length().unwrap(), 4);
    assert_eq!(arr.call_method("join", &["-".into()]).unwrap(), Value::from("10-20-30-40"));
    let ctor = c.eval("(class P { constructor(x) { this.x = x } })").unwrap();
    let inst = ctor.as_handle().unwrap().construct(&[5.into()]).unwrap();
    assert_eq!(inst.as_handle().unwrap().get("x").unwrap(), Value::Integer(5));
    // Handles can be passed back in.
    assert_eq!(c.call("(o) => o.b", &[Value::Handle(o.clone())]).unwrap(), Value::from("two"));
    // Wrong kinds are typed errors.
    assert_err(o.call(&[]), "InvalidArgument", "the handle is not a function");
    assert_err(o.await_promise(None), "InvalidArgument", "the handle is not a promise");
    assert_err(o.get(Value::Null), "InvalidArgument", "a property key must be a string, number or symbol");
    // A handle from another context is refused.
    let other = ctx();
    assert_err(other.call(arr, &[]), "InvalidArgument", "the handle belongs to another context");
    assert_err(other.call("(x) => x", &[Value::Handle(o.clone())]), "Conversion", "a handle from another context");
}

#[test]
fn handles_are_released_in_batches() {
    let c = ctx();
    c.eval("globalThis.big = () => new Array(1e5).fill(0).map((_, i) => ({i}))").unwrap();
    let before = c.heap_stats().unwrap().used_heap_size;
    for _ in 0..50 {
        let h = c.eval_with("big()", EvalOptions { as_handle: true, ..Default::default() }).unwrap();
        drop(h);
    }
    c.eval("0").unwrap();
    c.low_memory_notification().unwrap();
    let after = c.heap_stats().unwrap().used_heap_size;
    // 50 arrays of 1e5 objects kept alive would be > 100 MB.
    assert!(after < before + (20 << 20), "heap grew from {before} to {after}");
}

#[test]
fn iterators_and_weak_collections_are_handles_with_previews() {
    let c = ctx();
    let it = c.eval("const m = new Map([['a', 1], ['b', 2]]); const it = m.entries(); it.next(); it").unwrap();
    let it = it.as_handle().expect("an iterator is not data: a handle").clone();
    // From its position, not consuming it.
    let pairs = (vec![Value::from("b"), Value::Integer(2)], true);
    assert_eq!(it.preview_entries().unwrap(), pairs);
    assert_eq!(it.preview_entries().unwrap(), pairs);
    let set = c.eval("new Set([1, 2]).values()").unwrap();
    assert_eq!(
        set.as_handle().unwrap().preview_entries().unwrap(),
        (vec![Value::Integer(1), Value::Integer(2)], false)
    );
    let weak = c.eval("globalThis.k = {}; new WeakMap([[k, 5]])").unwrap();
    let (items, kv) = weak.as_handle().unwrap().preview_entries().unwrap();
    assert!(kv);
    assert_eq!(items[1], Value::Integer(5));
    let proxy = c.eval("new Proxy({}, {})").unwrap();
    assert!(matches!(proxy.as_handle().unwrap().preview_entries(), Err(Error::InvalidArgument(_))));
}

// ---------------------------------------------------------------- errors

#[test]
fn errors_carry_name_message_stack_and_position() {
    let c = ctx();
    match c.eval_with("let x = ;", EvalOptions { filename: Some("bad.js".into()), ..Default::default() }).unwrap_err() {
        Error::Parse(e) => {
            assert_eq!(e.name, "SyntaxError");
            assert_eq!(e.filename.as_deref(), Some("bad.js"));
            assert_eq!(e.line, Some(1));
            assert_eq!(e.column, Some(9));
            assert!(e.stack.contains("bad.js:1:9"), "{}", e.stack);
        }
        other => panic!("{other:?}"),
    }
    let src = "function f() {\n  throw new RangeError('out of range');\n}\nf();";
    match c.eval_with(src, EvalOptions { filename: Some("app.js".into()), ..Default::default() }).unwrap_err() {
        Error::Js(e) => {
            assert_eq!(e.name, "RangeError");
            assert_eq!(e.message, "out of range");
            assert!(e.stack.contains("at f (app.js:2:9)"), "{}", e.stack);
            assert_eq!(e.line, Some(2));
            assert!(matches!(*e.value, Value::Error(ref v) if v.name == "RangeError"));
        }
        other => panic!("{other:?}"),
    }
    match c.eval_with("\n throw 42", EvalOptions { filename: Some("n.js".into()), ..Default::default() }).unwrap_err() {
        Error::Js(e) => {
            assert_eq!(e.name, "");
            assert_eq!(e.message, "42");
            assert_eq!(*e.value, Value::Integer(42));
            assert!(e.stack.contains("n.js:2:2"), "{}", e.stack);
        }
        other => panic!("{other:?}"),
    }
    match c.eval("throw {code: 7}").unwrap_err() {
        Error::Js(e) => assert_eq!(*e.value, obj(&[("code", 7.into())])),
        other => panic!("{other:?}"),
    }
    // A runtime SyntaxError (not at compile) is a JSError.
    assert!(matches!(c.eval("JSON.parse('{')"), Err(Error::Js(e)) if e.name == "SyntaxError"));
    assert!(matches!(c.eval("eval('let = ;')"), Err(Error::Js(e)) if e.name == "SyntaxError"));
    // The context is still usable.
    assert_eq!(c.eval("1").unwrap(), Value::Integer(1));
}

#[test]
fn errors_carry_the_shell_report() {
    let c = ctx();
    let report = |src: &str| c.eval(src).unwrap_err().exception().map(|e| e.report.clone()).unwrap();
    assert_eq!(
        report("var f = function() {throw new Error('blah')}; f()"),
        "<eval>:1: Error: blah\nvar f = function() {throw new Error('blah')}; f()\n                    ^\n\n\
         Error: blah\n    at f (<eval>:1:27)\n    at <eval>:1:47\n"
    );
    // A thrown string has no stack; a parse error's stack is its text.
    assert_eq!(report("throw 'x'"), "<eval>:1: x\nthrow 'x'\n^\n");
    assert_eq!(
        report("var f = function("),
        "<eval>:1: SyntaxError: Unexpected end of input\nvar f = function(\n                 ^\n\n\
         SyntaxError: Unexpected end of input\n"
    );
    // A very long line is cut around the error.
    let long = format!("{}throw 1", " ".repeat(100_000));
    let r = report(&long);
    let lines: Vec<&str> = r.lines().collect();
    assert!(r.len() < 1000 && lines[1].ends_with("throw 1"), "{r}");
    assert_eq!(lines[2].find('^'), lines[1].find("throw"), "{r}");
    // A promise rejection has a message without a position.
    let r = c
        .eval_with("Promise.reject(new TypeError('later'))", EvalOptions { await_promise: true, ..Default::default() });
    let r = r.unwrap_err().exception().unwrap().report.clone();
    assert!(r.contains("TypeError: later"), "{r}");
}

#[test]
fn a_getter_that_throws_while_the_result_is_read_raises_its_exception() {
    let c = ctx();
    match c.eval("({ ok: 1, get bad() { throw new RangeError('no') } })") {
        Err(Error::Js(e)) => {
            assert_eq!((e.name.as_str(), e.message.as_str()), ("RangeError", "no"));
            assert!(e.stack.contains("at get bad"), "{}", e.stack);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(c.eval("1 + 1").unwrap(), Value::Integer(2));
}

// ---------------------------------------------------------------- host functions

#[test]
fn host_functions_and_errors() {
    let c = ctx();
    c.expose("add", |_, args| Ok(Value::from(args[0].as_f64().unwrap() + args[1].as_f64().unwrap()))).unwrap();
    assert_eq!(c.eval("add(2, 3)").unwrap(), Value::Integer(5));
    c.expose("console.log", |_, args| Ok(Value::from(args.len()))).unwrap();
    assert_eq!(c.eval("console.log(1, 2, 3)").unwrap(), Value::Integer(3));

    #[derive(Debug)]
    struct MyHostError(u32);
    c.expose("fail", |_, _| {
        Err(HostError::new("host says no").with_name("TypeError").with_payload(Arc::new(MyHostError(7))))
    })
    .unwrap();
    // Caught in JS: a normal JS error.
    assert_eq!(
        c.eval("try { fail() } catch (e) { `${e.name}|${e.message}|${e instanceof TypeError}` }").unwrap(),
        Value::from("TypeError|host says no|true")
    );
    // Uncaught: comes back with the host error as cause.
    match c.eval("fail()").unwrap_err() {
        Error::Js(e) => {
            assert_eq!(e.name, "TypeError");
            assert_eq!(e.message, "host says no");
            assert_eq!(e.cause_as::<MyHostError>().unwrap().0, 7);
        }
        other => panic!("{other:?}"),
    }
    c.expose("boom", |_, _| panic!("kaboom")).unwrap();
    match c.eval("boom()").unwrap_err() {
        Error::Js(e) => assert!(e.message.contains("kaboom"), "{}", e.message),
        other => panic!("{other:?}"),
    }
    assert_err(
        c.expose("not valid!", |_, _| Ok(Value::Null)),
        "InvalidArgument",
        "is not a global name or dotted path of identifiers",
    );
}

#[test]
fn host_callbacks_run_on_the_calling_thread() {
    let c = ctx();
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let s2 = seen.clone();
    c.expose("whoami", move |_, _| {
        s2.lock().unwrap().push(std::thread::current().id());
        Ok(Value::Null)
    })
    .unwrap();
    let mut ids = Vec::new();
    std::thread::scope(|sc| {
        for _ in 0..3 {
            let c = c.clone();
            ids.push(
                sc.spawn(move || {
                    c.eval("whoami()").unwrap();
                    std::thread::current().id()
                })
                .join()
                .unwrap(),
            );
        }
    });
    assert_eq!(*seen.lock().unwrap(), ids);
}

#[test]
fn nested_js_host_recursion_depth_100_plus() {
    let c = ctx();
    c.expose("down", |ctx, args| {
        let n = args[0].as_i64().unwrap();
        if n == 0 {
            return Ok(Value::Integer(0));
        }
        let r = ctx.call("step", &[Value::Integer(n - 1)])?;
        Ok(Value::Integer(r.as_i64().unwrap() + 1))
    })
    .unwrap();
    c.eval("function step(n) { return down(n); }").unwrap();
    assert_eq!(c.call("step", &[150.into()]).unwrap(), Value::Integer(150));
    // An error deep inside unwinds through every level.
    c.expose("deep_fail", |ctx, args| {
        let n = args[0].as_i64().unwrap();
        if n == 0 {
            return Err(HostError::new("bottom"));
        }
        ctx.call("deep_fail", &[Value::Integer(n - 1)]).map_err(HostError::from)
    })
    .unwrap();
    match c.call("deep_fail", &[120.into()]).unwrap_err() {
        Error::Js(e) => assert_eq!(e.message, "bottom"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn async_host_functions_give_promises() {
    let c = ctx();
    c.expose_async("later", |_, args, done| {
        let v = args[0].clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            done.resolve(v);
        });
    })
    .unwrap();
    assert_eq!(c.eval_await("later(5).then((x) => x * 2)").unwrap(), Value::Integer(10));
    c.expose_async("nope", |_, _, done| done.reject(HostError::new("async no"))).unwrap();
    match c.eval_await("nope()").unwrap_err() {
        Error::Js(e) => assert_eq!(e.message, "async no"),
        other => panic!("{other:?}"),
    }
    assert_eq!(c.eval_await("nope().catch((e) => 'caught ' + e.message)").unwrap(), Value::from("caught async no"));
    c.expose_async("forgetful", |_, _, done| drop(done)).unwrap();
    assert_err(c.eval_await("forgetful()"), "JSError", "dropped its promise without settling it");
}

// ---------------------------------------------------------------- promises and timers

#[test]
fn promises_microtasks_and_timers() {
    let c = ctx();
    // Microtasks run after each call.
    c.eval("globalThis.log = []; Promise.resolve().then(() => log.push('micro'))").unwrap();
    assert_eq!(c.eval("log.length").unwrap(), Value::Integer(1));
    c.eval("queueMicrotask(() => log.push('q'))").unwrap();
    assert_eq!(c.eval("log.join()").unwrap(), Value::from("micro,q"));
    // Awaiting a returned promise.
    // (Timed from before the timer exists: a thread preempted between the
    // eval and the clock read would otherwise see less than 30 ms.)
    let t = Instant::now();
    let p = c.eval("new Promise((r) => setTimeout(() => r('done'), 30))").unwrap();
    assert_eq!(p.as_handle().unwrap().await_promise(None).unwrap(), Value::from("done"));
    assert!(t.elapsed() >= Duration::from_millis(30));
    assert_eq!(c.eval_await("(async () => { await null; return 7 })()").unwrap(), Value::Integer(7));
    // clearTimeout cancels.
    assert_eq!(
        c.eval_await(
            "new Promise((r) => { const t = setTimeout(() => r('fired'), 10); clearTimeout(t); setTimeout(() => r('other'), 20) })"
        )
        .unwrap(),
        Value::from("other")
    );
    // Rejections come back as JS errors.
    match c.eval_await("Promise.reject(new Error('nope'))").unwrap_err() {
        Error::Js(e) => assert_eq!(e.message, "nope"),
        other => panic!("{other:?}"),
    }
    // A promise nothing can settle is reported, not waited on forever.
    assert_err(c.eval_await("new Promise(() => {})"), "JSError", "the promise can never settle");
    // Timers queued and due run at the next request.
    c.eval("globalThis.fired = false; setTimeout(() => { fired = true }, 0)").unwrap();
    std::thread::sleep(Duration::from_millis(5));
    assert_eq!(c.eval("fired").unwrap(), Value::Bool(true));
    c.eval("globalThis.n = 0; for (let i = 0; i < 3; i++) setTimeout(() => n++, 5 * i)").unwrap();
    c.run_event_loop(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(c.eval("n").unwrap(), Value::Integer(3));
    // Await with a timeout.
    let t = Instant::now();
    let slow = c.eval("new Promise((r) => setTimeout(r, 10000))").unwrap();
    assert!(matches!(slow.as_handle().unwrap().await_promise(Some(Duration::from_millis(50))), Err(Error::Timeout)));
    assert!(t.elapsed() < Duration::from_secs(5));
    assert!(matches!(c.eval("setTimeout(1)"), Err(Error::Js(e)) if e.name == "TypeError"));
}

/// A minimal executor: polls on this thread, parking until woken.
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    struct ThreadWaker(std::thread::Thread);
    impl std::task::Wake for ThreadWaker {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = std::task::Waker::from(Arc::new(ThreadWaker(std::thread::current())));
    let mut cx = std::task::Context::from_waker(&waker);
    let mut f = std::pin::pin!(f);
    loop {
        if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}

#[test]
fn async_awaits_for_async_hosts() {
    let c = ctx();
    let fut = c.eval_async("new Promise((r) => setTimeout(() => r('async done'), 20))", EvalOptions::default());
    assert!(!fut.is_ready());
    assert_eq!(block_on(fut).unwrap(), Value::from("async done"));
    c.eval("globalThis.later = (x) => new Promise((r) => setTimeout(() => r(x * 2), 5))").unwrap();
    assert_eq!(block_on(c.call_async("later", &[21.into()], EvalOptions::default())).unwrap(), Value::Integer(42));
    let p = c.eval("Promise.reject(new TypeError('async no'))").unwrap();
    match block_on(p.as_handle().unwrap().await_async(None)) {
        Err(Error::Js(e)) => assert_eq!(e.name, "TypeError"),
        other => panic!("{other:?}"),
    }
    // The call itself runs on this thread; work that is due later, with no
    // thread waiting and no task scheduler, runs on the driver thread.
    c.expose("where_am_i", |_, _| Ok(Value::from(std::thread::current().name().unwrap_or("").to_string()))).unwrap();
    let here = std::thread::current().name().unwrap_or("").to_string();
    assert_eq!(block_on(c.eval_async("where_am_i()", EvalOptions::default())).unwrap(), Value::from(here));
    let later = c.eval_async("new Promise((r) => setTimeout(() => r(where_am_i()), 5))", EvalOptions::default());
    assert_eq!(block_on(later).unwrap(), Value::from("polyracer-driver"));
    // Several awaits at once on one context.
    let futs: Vec<_> = (0..4)
        .map(|i| c.eval_async(&format!("new Promise((r) => setTimeout(() => r({i}), 10))"), EvalOptions::default()))
        .collect();
    let got: Vec<Value> = futs.into_iter().map(|f| block_on(f).unwrap()).collect();
    assert_eq!(got, (0..4).map(Value::from).collect::<Vec<_>>());
}

#[test]
fn no_ambient_globals() {
    let c = ctx();
    assert_eq!(
        c.eval("[typeof require, typeof process, typeof fetch, typeof console, typeof setInterval, typeof Deno]")
            .unwrap(),
        Value::Array(vec!["undefined".into(); 6])
    );
}

// ---------------------------------------------------------------- limits

#[test]
fn timeouts_terminate_and_context_survives() {
    let c = Context::new(ContextOptions { timeout: Some(Duration::from_millis(100)), ..Default::default() }).unwrap();
    let t = Instant::now();
    assert!(matches!(c.eval("while (true) {}"), Err(Error::Timeout)));
    assert!(t.elapsed() < Duration::from_secs(3));
    assert_eq!(c.eval("1 + 1").unwrap(), Value::Integer(2));
    // Per-call override.
    let t = Instant::now();
    assert!(matches!(
        c.eval_with("for(;;){}", EvalOptions { timeout: Some(Duration::from_millis(20)), ..Default::default() }),
        Err(Error::Timeout)
    ));
    assert!(t.elapsed() < Duration::from_millis(100) + Duration::from_secs(1));
    // A timeout inside a nested call still unwinds everything.
    c.expose("reenter", |ctx, _| ctx.eval("while(true){}").map_err(HostError::from)).unwrap();
    assert!(matches!(c.eval("reenter()"), Err(Error::Timeout)));
    assert_eq!(c.eval("'alive'").unwrap(), Value::from("alive"));
    // A JS catch cannot swallow termination.
    assert!(matches!(c.eval("try { while(true){} } catch (e) { 'caught' }"), Err(Error::Timeout)));
}

/// Calls `terminate()` on a clone of `c` every 10 ms until `run` returns.
/// terminate() stops only the JS running at that moment (it is not
/// remembered for the next call), so a single call made before the eval
/// starts would be lost on a loaded machine; repeating it cannot miss.
fn terminating<T>(c: &Context, run: impl FnOnce() -> T) -> T {
    let done = Arc::new(AtomicBool::new(false));
    let t = std::thread::spawn({
        let (c, done) = (c.clone(), done.clone());
        move || {
            while !done.load(Ordering::SeqCst) {
                c.terminate();
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    });
    let out = run();
    done.store(true, Ordering::SeqCst);
    t.join().unwrap();
    out
}

/// A bound for evals that only terminate() should stop: a regression then
/// fails as `Timeout` instead of hanging the suite.
fn bounded() -> EvalOptions {
    EvalOptions { timeout: Some(Duration::from_secs(30)), ..Default::default() }
}

#[test]
fn terminate_from_another_thread() {
    let c = ctx();
    let r = terminating(&c, || c.eval_with("while (true) {}", bounded()));
    assert!(matches!(r, Err(Error::Terminated)), "{r:?}");
    assert_eq!(c.eval("2").unwrap(), Value::Integer(2));
    // terminate() with nothing running does not affect the next call.
    c.terminate();
    assert_eq!(c.eval("3").unwrap(), Value::Integer(3));
}

#[test]
fn memory_limit_gives_out_of_memory_not_abort() {
    let c = Context::new(ContextOptions { memory_limit: Some(32 << 20), ..Default::default() }).unwrap();
    assert!(matches!(
        c.eval("const a = []; while (true) a.push(new Array(1e5).fill({x: 1}))"),
        Err(Error::OutOfMemory)
    ));
    // The garbage is gone once the call unwound; the context keeps working.
    assert_eq!(c.eval("[1,2,3].length").unwrap(), Value::Integer(3));
    assert!(matches!(
        c.eval("let s = 'x'; while (true) s += s + Math.random()"),
        Err(Error::OutOfMemory | Error::Js(_))
    ));
    assert_eq!(c.eval("'ok'").unwrap(), Value::from("ok"));
    let limit = c.heap_stats().unwrap().heap_size_limit;
    assert!(limit < 128 << 20, "limit {limit}");
    assert_err(
        Context::new(ContextOptions { memory_limit: Some(1000), ..Default::default() }),
        "InvalidArgument",
        "memory limit must be a whole number of bytes",
    );
}

#[test]
fn heap_stats_snapshot_and_low_memory() {
    let c = ctx();
    let s = c.heap_stats().unwrap();
    assert!(s.used_heap_size > 0 && s.total_heap_size >= s.used_heap_size && s.heap_size_limit > 0);
    c.low_memory_notification().unwrap();
    let dir = std::env::temp_dir().join(format!("polyracer-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("a.heapsnapshot");
    c.eval("globalThis.marker = {veryUniqueMarkerName: 1}").unwrap();
    c.write_heap_snapshot(&path).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.starts_with("{\"snapshot\""), "{}", &text[..40]);
    assert!(text.contains("veryUniqueMarkerName"));
    assert_err(c.write_heap_snapshot("/nonexistent/dir/x.heapsnapshot"), "InvalidArgument", "cannot write");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn gc_heap_limit_is_checked_after_collections_at_any_size() {
    let c = Context::new(ContextOptions { gc_heap_limit: Some(100_000), ..Default::default() }).unwrap();
    c.expose("gc", |ctx, _| {
        ctx.low_memory_notification().map_err(|e| polyracer::HostError::new(e.to_string()))?;
        Ok(Value::Undefined)
    })
    .unwrap();
    assert!(matches!(c.eval("gc(); 1"), Err(Error::OutOfMemory)));
    assert_eq!(c.eval("1 + 1").unwrap(), Value::Integer(2));
    // A generous limit stops nothing.
    let roomy = Context::new(ContextOptions { gc_heap_limit: Some(512 << 20), ..Default::default() }).unwrap();
    assert_eq!(
        roomy.eval("let a = []; for (let i = 0; i < 1e5; i++) a.push({i}); a.length").unwrap(),
        Value::Integer(100000)
    );
    for bad in [0i128, -1, 1 << 41] {
        assert!(matches!(polyracer::limits::gc_heap_limit(bad), Err(Error::InvalidArgument(_))));
    }
}

#[test]
fn microtask_checkpoint_from_a_host_function_runs_reactions_there() {
    let c = ctx();
    c.expose("drain", |ctx, _| {
        ctx.perform_microtask_checkpoint().map_err(|e| polyracer::HostError::new(e.to_string()))?;
        Ok(Value::Undefined)
    })
    .unwrap();
    let order = c.eval("const seen = []; Promise.resolve().then(() => seen.push('micro')); seen.push('before'); drain(); seen.push('after'); seen.join()");
    assert_eq!(order.unwrap(), Value::from("before,micro,after"));
    assert!(!c.run_pending_tasks().unwrap());
    let stats = c.heap_stats().unwrap();
    assert!(stats.total_global_handles_size >= stats.used_global_handles_size);
    assert_eq!(stats.entries().len(), 13);
}

// ---------------------------------------------------------------- lifecycle and threads

#[test]
fn dispose_is_idempotent_and_use_after_dispose_errors() {
    let c = ctx();
    let f = c.eval("() => 1").unwrap();
    c.dispose();
    c.dispose();
    assert!(c.is_disposed());
    assert_err(c.eval("1"), "Disposed", "the context is disposed");
    assert_err(f.as_handle().unwrap().call(&[]), "Disposed", "the context is disposed");
    assert_err(c.heap_stats(), "Disposed", "the context is disposed");
    // Dropping the last clone disposes.
    let c = ctx();
    let h = c.eval("() => 1").unwrap();
    drop(c);
    assert_err(h.as_handle().unwrap().call(&[]), "Disposed", "the context is disposed");
}

#[test]
fn dispose_while_running_stops_the_call() {
    let c = ctx();
    let c2 = c.clone();
    let t = std::thread::spawn(move || c2.eval("while (true) {}"));
    std::thread::sleep(Duration::from_millis(50));
    c.dispose();
    // Disposed before the eval started, or while it ran: both are Disposed.
    assert_err(t.join().unwrap(), "Disposed", "the context");
}

#[test]
fn dispose_from_inside_a_callback() {
    let c = ctx();
    c.expose("selfdestruct", |ctx, _| {
        ctx.dispose();
        Ok(Value::Null)
    })
    .unwrap();
    match c.eval("selfdestruct(); 1") {
        Err(Error::Disposed(m)) => assert!(m.contains("disposed"), "{m}"),
        other => panic!("expected Disposed, got {other:?}"),
    }
    assert_err(c.eval("1"), "Disposed", "the context is disposed");
}

#[test]
fn eight_threads_on_one_context() {
    let c = ctx();
    c.eval("globalThis.counter = 0").unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    c.expose("tick", {
        let calls = calls.clone();
        move |_, _| {
            calls.fetch_add(1, Ordering::SeqCst);
            Ok(Value::Null)
        }
    })
    .unwrap();
    std::thread::scope(|s| {
        for t in 0..8 {
            let c = c.clone();
            s.spawn(move || {
                for i in 0..200 {
                    let r = c.call("(a, b) => { counter++; tick(); return a * b }", &[t.into(), i.into()]).unwrap();
                    assert_eq!(r, Value::Integer(t * i));
                }
            });
        }
    });
    assert_eq!(c.eval("counter").unwrap(), Value::Integer(1600));
    assert_eq!(calls.load(Ordering::SeqCst), 1600);
}

#[test]
fn hundred_contexts_alive_at_once() {
    let contexts: Vec<Context> = (0..100).map(|_| ctx()).collect();
    for (i, c) in contexts.iter().enumerate() {
        c.set_global("id", i).unwrap();
    }
    for (i, c) in contexts.iter().enumerate() {
        assert_eq!(c.eval("id").unwrap(), Value::from(i));
    }
}

fn rss_kib() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// How long a child process of a test may run: generous for a loaded
/// 2-core machine, short enough that a hung child fails the test (and says
/// so) instead of hanging the suite.
const CHILD_DEADLINE: Duration = Duration::from_secs(120);

#[path = "support/child.rs"]
mod child;

/// `Command::output` with a deadline: past it the child is killed and the
/// test fails.
fn output_within(cmd: &mut std::process::Command, limit: Duration) -> std::process::Output {
    use std::process::Stdio;
    let child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    child::output_within(child, limit)
}

/// `waitpid` with a deadline, for forked children: past it the child is
/// killed and the test fails.
fn waitpid_within(pid: libc::pid_t, limit: Duration) -> libc::c_int {
    let start = Instant::now();
    let mut status = 0;
    loop {
        // SAFETY: pid is our own child; status is a valid out-pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if r == pid {
            return status;
        }
        assert_eq!(r, 0, "waitpid({pid}) failed: {}", std::io::Error::last_os_error());
        if start.elapsed() > limit {
            // SAFETY: as above; the blocking wait reaps the killed child.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
            }
            panic!("forked child {pid} still running after {limit:?}; killed it");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Runs `name` (an `#[ignore]`d test) alone in a fresh copy of this binary,
/// for tests that need a quiet process: fork, RSS measurements.
fn run_isolated(name: &str) {
    if std::env::var_os("POLYRACER_ISOLATED").is_some() {
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let out = output_within(
        std::process::Command::new(exe)
            .args(["--exact", name, "--ignored", "--test-threads=1", "--nocapture"])
            .env("POLYRACER_ISOLATED", "1"),
        CHILD_DEADLINE,
    );
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("1 passed"), "{text}");
}

#[test]
fn create_dispose_1000_contexts_rss_stable() {
    run_isolated("rss_helper");
}

#[test]
#[ignore = "run by create_dispose_1000_contexts_rss_stable in its own process"]
fn rss_helper() {
    for _ in 0..100 {
        let c = ctx();
        c.eval("[1,2,3].map(x => x * 2)").unwrap();
    }
    let base = rss_kib();
    for _ in 0..1000 {
        let c = ctx();
        c.eval("[1,2,3].map(x => x * 2)").unwrap();
        c.dispose();
    }
    let grown = rss_kib().saturating_sub(base);
    println!("RSS grew by {grown} KiB over 1000 contexts");
    // A leak of even 20 KB per context would show as 20 MB here.
    assert!(grown < 16 * 1024, "RSS grew by {grown} KiB over 1000 contexts");
}

#[test]
fn fork_child_sees_a_clear_error() {
    // fork() in a multi-threaded test process is unsafe; run the check in a
    // fresh copy of this binary with only that test.
    run_isolated("fork_helper");
}

#[test]
#[ignore = "run by fork_child_sees_a_clear_error in its own process"]
fn fork_helper() {
    let c = ctx();
    assert_eq!(c.eval("1").unwrap(), Value::Integer(1));
    // SAFETY: the child only inspects the error and exits with _exit.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        let ok = match c.eval("1") {
            Err(Error::Disposed(m)) => m.contains("fork"),
            _ => false,
        };
        let ok2 = matches!(Context::new(ContextOptions::default()), Err(Error::Disposed(ref m)) if m.contains("fork"));
        std::mem::forget(c);
        unsafe { libc::_exit(if ok && ok2 { 0 } else { 1 }) };
    }
    let status = waitpid_within(pid, CHILD_DEADLINE);
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "child failed: {status}");
    assert_eq!(c.eval("2").unwrap(), Value::Integer(2));
}

#[test]
fn single_threaded_engine_children_use_inherited_and_new_contexts() {
    run_isolated("fork_single_threaded_helper");
}

#[test]
#[ignore = "run by single_threaded_engine_children_use_inherited_and_new_contexts in its own process"]
fn fork_single_threaded_helper() {
    polyracer::configure(polyracer::EngineOptions { single_threaded: true, ..Default::default() }).unwrap();
    // The parent has used V8 before it forks, as a preforking server does.
    let c = ctx();
    assert_eq!(c.eval("1").unwrap(), Value::Integer(1));
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // The child's copy of the parent's context goes on (its own heap
        // now), and new contexts work too.
        let inherited = matches!(c.eval("globalThis.n = 40; n + 1"), Ok(Value::Integer(41)));
        c.dispose();
        let fresh = Context::new(ContextOptions::default()).and_then(|n| n.eval("[1, 2].map((x) => x * 21)[1]"));
        let ok = inherited && matches!(fresh, Ok(Value::Integer(42)));
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }
    let status = waitpid_within(pid, CHILD_DEADLINE);
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "child failed: {status}");
    // The child's changes stayed in the child.
    assert_eq!(c.eval("typeof n").unwrap(), Value::String("undefined".into()));
}

// ---------------------------------------------------------------- code cache

use polyracer::{CompileOptions, ModuleOptions, Snapshot};

#[test]
fn code_cache_produce_and_consume() {
    let src = "function fib(n) { return n < 2 ? n : fib(n - 1) + fib(n - 2) } fib(15)";
    let c = ctx();
    let s =
        c.compile(src, CompileOptions { filename: Some("fib.js"), produce_cache: true, ..Default::default() }).unwrap();
    assert!(!s.cache_rejected());
    let cache = s.cached_data().expect("a cache was asked for").to_vec();
    assert!(cache.len() > 16);
    assert_eq!(s.run().unwrap(), Value::Integer(610));
    assert_eq!(s.run().unwrap(), Value::Integer(610));

    let c2 = ctx();
    let s2 = c2
        .compile(src, CompileOptions { cached_data: Some(&cache), produce_cache: true, ..Default::default() })
        .unwrap();
    assert!(!s2.cache_rejected());
    assert!(s2.cached_data().is_none(), "nothing to produce when the cache was consumed");
    assert_eq!(s2.run().unwrap(), Value::Integer(610));
    // Without produce_cache nothing is produced.
    assert!(c2.compile(src, CompileOptions::default()).unwrap().cached_data().is_none());
    let tag = polyracer::cached_data_version_tag();
    assert_ne!(tag, 0);
    assert_eq!(tag, polyracer::cached_data_version_tag());
}

#[test]
fn bad_code_caches_fall_back_to_a_normal_compile() {
    let src = "[1, 2, 3].map((x) => x * 3).join()";
    let c = ctx();
    let good = c
        .compile(src, CompileOptions { produce_cache: true, ..Default::default() })
        .unwrap()
        .cached_data()
        .unwrap()
        .to_vec();
    let mut flipped = good.clone();
    let mid = flipped.len() / 2 + 10;
    flipped[mid] ^= 0x5a;
    let other_source = c
        .compile("'a different script'", CompileOptions { produce_cache: true, ..Default::default() })
        .unwrap()
        .cached_data()
        .unwrap()
        .to_vec();
    let random: Vec<u8> = (0..4096u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("truncated", good[..good.len() / 2].to_vec()),
        ("flipped byte", flipped),
        ("random", random),
        ("empty", Vec::new()),
        ("another source", other_source),
        ("header only", good[..40].to_vec()),
    ];
    for (what, bytes) in cases {
        let s = c
            .compile(src, CompileOptions { cached_data: Some(&bytes), produce_cache: true, ..Default::default() })
            .unwrap();
        assert!(s.cache_rejected(), "{what} was accepted");
        assert!(s.cached_data().is_some(), "{what}: a fresh cache is produced after a rejection");
        assert_eq!(s.run().unwrap(), Value::from("3,6,9"), "{what}");
    }
}

#[test]
fn scripts_dispose_and_errors() {
    let c = ctx();
    let s = c.compile("globalThis.n = (globalThis.n || 0) + 1", CompileOptions::default()).unwrap();
    assert_eq!(s.run().unwrap(), Value::Integer(1));
    assert_eq!(s.run().unwrap(), Value::Integer(2));
    s.dispose();
    s.dispose();
    assert_err(s.run(), "Disposed", "the script is disposed");
    match c.compile("let = ;", CompileOptions { filename: Some("bad.js"), ..Default::default() }).unwrap_err() {
        Error::Parse(e) => assert_eq!(e.filename.as_deref(), Some("bad.js")),
        other => panic!("{other:?}"),
    }
    let t = c.compile("throw new Error('at run')", CompileOptions::default()).unwrap();
    assert!(matches!(t.run(), Err(Error::Js(e)) if e.message == "at run"));
    let kept = c.compile("1", CompileOptions::default()).unwrap();
    c.dispose();
    assert_err(kept.run(), "Disposed", "disposed");
}

#[test]
fn producing_a_cache_inside_a_host_callback_is_refused() {
    let c = ctx();
    c.expose("compile_inside", |ctx, _| {
        match ctx.compile("1 + 1", CompileOptions { produce_cache: true, ..Default::default() }) {
            Err(Error::InvalidArgument(m)) => Ok(Value::String(m)),
            other => Err(HostError::new(format!("expected a refusal, got {other:?}"))),
        }
    })
    .unwrap();
    match c.eval("compile_inside()").unwrap() {
        Value::String(m) => assert!(m.contains("host callback"), "{m}"),
        other => panic!("{other:?}"),
    }
    // Compiling without producing is fine there.
    c.expose("compile_plain", |ctx, _| ctx.compile("2 + 2", CompileOptions::default())?.run().map_err(HostError::from))
        .unwrap();
    assert_eq!(c.eval("compile_plain()").unwrap(), Value::Integer(4));
}

// ---------------------------------------------------------------- snapshots

fn with_snapshot(s: &Snapshot) -> Context {
    Context::new(ContextOptions { snapshot: Some(s.clone()), ..Default::default() }).unwrap()
}

#[test]
fn snapshot_create_dump_load() {
    let snap = Snapshot::create("globalThis.base = 40; function add(a, b) { return a + b } var list = [1, 2]").unwrap();
    let c = with_snapshot(&snap);
    assert_eq!(c.eval("add(base, 2)").unwrap(), Value::Integer(42));
    // Timers and host functions exist in contexts made from snapshots.
    assert_eq!(c.eval_await("new Promise((r) => setTimeout(() => r(list.length), 1))").unwrap(), Value::Integer(2));
    c.expose("host", |_, _| Ok(Value::from("h"))).unwrap();
    assert_eq!(c.eval("host()").unwrap(), Value::from("h"));

    let bytes = snap.dump();
    let loaded = Snapshot::load(&bytes).unwrap();
    assert_eq!(with_snapshot(&loaded).eval("add(1, base)").unwrap(), Value::Integer(41));
}

#[test]
fn snapshot_contexts_share_nothing() {
    let snap = Snapshot::create("var counter = {n: 0}; function bump() { return ++counter.n }").unwrap();
    let a = with_snapshot(&snap);
    let b = with_snapshot(&snap);
    assert_eq!(a.eval("bump(); bump()").unwrap(), Value::Integer(2));
    assert_eq!(b.eval("counter.n").unwrap(), Value::Integer(0));
    a.eval("globalThis.extra = 1").unwrap();
    assert_eq!(b.eval("typeof extra").unwrap(), Value::from("undefined"));
}

#[test]
fn snapshot_warmup_keeps_state_but_not_warmup_effects() {
    let snap = Snapshot::create("function square(x) { return x * x } var kept = 'yes'").unwrap();
    let warm = snap.warmup("for (let i = 0; i < 1000; i++) square(i); globalThis.fromWarmup = true").unwrap();
    let c = with_snapshot(&warm);
    assert_eq!(
        c.eval("[square(9), kept, typeof fromWarmup]").unwrap(),
        Value::Array(vec![81.into(), "yes".into(), "undefined".into()])
    );
}

#[test]
fn bad_snapshot_bytes_are_refused() {
    let good = Snapshot::create("var a = 1").unwrap().dump();
    let mut flipped = good.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 1;
    let mut other_engine = good.clone();
    other_engine[8] ^= 0xff; // the V8 version/flags fingerprint
    for (what, bytes) in [
        ("truncated", good[..good.len() - 1].to_vec()),
        ("flipped", flipped),
        ("other engine", other_engine),
        ("raw V8 blob", good[40..].to_vec()),
        ("empty", vec![]),
        ("random", (0..100_000u32).map(|i| (i.wrapping_mul(2654435761) >> 7) as u8).collect()),
    ] {
        match Snapshot::load(&bytes) {
            Err(Error::InvalidArgument(m)) => assert!(m.contains("snapshot"), "{what}: {m}"),
            other => panic!("{what}: {other:?}"),
        }
    }
}

#[test]
fn snapshot_source_errors() {
    assert_err(Snapshot::create("let = ;"), "ParseError", "Unexpected token ';'");
    assert!(matches!(Snapshot::create("throw new TypeError('no')"), Err(Error::Js(e)) if e.name == "TypeError"));
    // No timers or host functions exist while a snapshot is built.
    assert!(matches!(Snapshot::create("setTimeout(() => {}, 1)"), Err(Error::Js(e)) if e.name == "ReferenceError"));
    // Pending promises cannot be captured.
    match Snapshot::create("globalThis.p = new Promise(() => {})") {
        Err(Error::InvalidArgument(m)) => assert!(m.contains("pending"), "{m}"),
        other => panic!("{other:?}"),
    }
    // Settled ones can.
    let s = Snapshot::create("globalThis.p = Promise.resolve(5); globalThis.v = 0; p.then((x) => { v = x })").unwrap();
    assert_eq!(with_snapshot(&s).eval("v").unwrap(), Value::Integer(5));
    assert!(matches!(
        Snapshot::create_with_timeout("while (true) {}", Duration::from_millis(100)),
        Err(Error::Timeout)
    ));
}

// ---------------------------------------------------------------- modules

fn files(
    map: &'static [(&'static str, &'static str)],
) -> impl Fn(&str, &str) -> Result<String, HostError> + Send + Sync {
    move |spec, referrer| {
        let name = polyracer::resolve_specifier(spec, referrer);
        map.iter()
            .find(|(n, _)| *n == name)
            .map(|(_, src)| src.to_string())
            .ok_or_else(|| HostError::new(format!("no module {name}")))
    }
}

#[test]
fn modules_static_and_dynamic_imports() {
    let c = ctx();
    static FILES: &[(&str, &str)] = &[
        ("/app/lib/math.mjs", "export const add = (a, b) => a + b; export default 'math';"),
        ("/app/lib/util.mjs", "import {add} from './math.mjs'; export const twice = (x) => add(x, x); globalThis.utilRuns = (globalThis.utilRuns || 0) + 1;"),
        ("/app/other.mjs", "import {twice} from './lib/util.mjs'; export const four = twice(2);"),
        ("/app/late.mjs", "export const late = import.meta.url;"),
    ];
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    let resolver = files(FILES);
    let m = c
        .eval_module(
            "import {twice} from './lib/util.mjs'; import {four} from './other.mjs'; import name from './lib/math.mjs';\n\
             export const result = twice(21) + four; export const n = name; export const url = import.meta.url;\n\
             export function later() { return import('./late.mjs').then((m) => m.late) }",
            "/app/main.mjs",
            move |spec, referrer| {
                seen2.lock().unwrap().push((spec.to_string(), referrer.to_string()));
                resolver(spec, referrer)
            },
        )
        .unwrap();
    assert_eq!(m.namespace.get("result"), Some(&Value::Integer(46)));
    assert_eq!(m.namespace.get("n"), Some(&Value::from("math")));
    assert_eq!(m.namespace.get("url"), Some(&Value::from("/app/main.mjs")));
    // util.mjs was imported twice but evaluated once.
    assert_eq!(c.eval("utilRuns").unwrap(), Value::Integer(1));
    {
        // One resolver call per distinct module, with the importer as referrer.
        let seen = seen.lock().unwrap();
        assert!(seen.contains(&("./lib/util.mjs".to_string(), "/app/main.mjs".to_string())), "{seen:?}");
        assert_eq!(seen.len(), 3, "{seen:?}");
    }
    // Dynamic import later, through the installed resolver.
    let later = m.handle.get("later").unwrap();
    let p = later.as_handle().unwrap().call(&[]).unwrap();
    assert_eq!(p.as_handle().unwrap().await_promise(None).unwrap(), Value::from("/app/late.mjs"));
    // And from a classic script (resolved against the script name).
    assert_eq!(
        c.eval_with(
            "import('/app/lib/math.mjs').then((m) => m.add(2, 3))",
            EvalOptions { await_promise: true, ..Default::default() }
        )
        .unwrap(),
        Value::Integer(5)
    );
}

#[test]
fn modules_top_level_await_and_cycles() {
    let c = ctx();
    let m = c
        .eval_module(
            "const v = await new Promise((r) => setTimeout(() => r('awaited'), 10)); export {v};",
            "tla.mjs",
            |_, _| Err(HostError::new("no imports here")),
        )
        .unwrap();
    assert_eq!(m.namespace.get("v"), Some(&Value::from("awaited")));
    static CYCLE: &[(&str, &str)] = &[
        ("a.mjs", "import {b} from './b.mjs'; export const a = 'a'; export const both = () => a + b;"),
        ("b.mjs", "import {a} from './a.mjs'; export const b = 'b'; export const seesA = () => a;"),
    ];
    let m = c.eval_module("import {both} from './a.mjs'; export const r = both();", "root.mjs", files(CYCLE)).unwrap();
    assert_eq!(m.namespace.get("r"), Some(&Value::from("ab")));
}

#[test]
fn module_errors_name_the_right_file() {
    let c = ctx();
    static BROKEN: &[(&str, &str)] = &[
        ("/m/bad.mjs", "export const x = 1;\nexport const y = ;"),
        ("/m/throws.mjs", "export const z = 1;\nthrow new RangeError('module threw');"),
    ];
    match c.eval_module("import './missing.mjs';", "/m/main.mjs", files(BROKEN)).unwrap_err() {
        Error::Js(e) => assert!(
            e.message.contains("./missing.mjs") && e.message.contains("no module /m/missing.mjs"),
            "{}",
            e.message
        ),
        other => panic!("{other:?}"),
    }
    match c.eval_module("import {x} from './bad.mjs';", "/m/main2.mjs", files(BROKEN)).unwrap_err() {
        Error::Parse(e) => {
            assert_eq!(e.filename.as_deref(), Some("/m/bad.mjs"));
            assert_eq!(e.line, Some(2));
        }
        other => panic!("{other:?}"),
    }
    match c.eval_module("import {z} from './throws.mjs';", "/m/main3.mjs", files(BROKEN)).unwrap_err() {
        Error::Js(e) => {
            assert_eq!(e.name, "RangeError");
            assert!(e.stack.contains("/m/throws.mjs:2"), "{}", e.stack);
        }
        other => panic!("{other:?}"),
    }
    assert_err(c.eval_module("export const = 1;", "/m/self.mjs", files(BROKEN)), "ParseError", "Unexpected token '='");
    match c.eval_module("await Promise.reject(new Error('tla failed'))", "/m/tla.mjs", files(BROKEN)).unwrap_err() {
        Error::Js(e) => assert_eq!(e.message, "tla failed"),
        other => panic!("{other:?}"),
    }
    // A resolver that returns garbage types is a clear error.
    let c2 = ctx();
    c2.eval_module("export {}", "x.mjs", |_, _| Ok(String::new())).unwrap();
    assert_eq!(c2.eval_await("import('./y.mjs').then((ns) => Object.keys(ns).length)").unwrap(), Value::Integer(0));
}

#[test]
fn module_code_cache() {
    let src =
        "export function f(n) { let s = 0; for (let i = 0; i < n; i++) s += i; return s } export const v = f(10);";
    let c = ctx();
    let m = c
        .eval_module_with(
            src,
            "cached.mjs",
            |_, _| Err(HostError::new("none")),
            ModuleOptions { produce_cache: true, ..Default::default() },
        )
        .unwrap();
    let cache = m.cached_data.expect("module cache");
    let c2 = ctx();
    let m2 = c2
        .eval_module_with(
            src,
            "cached.mjs",
            |_, _| Err(HostError::new("none")),
            ModuleOptions { cached_data: Some(&cache), ..Default::default() },
        )
        .unwrap();
    assert!(!m2.cache_rejected);
    assert_eq!(m2.namespace.get("v"), Some(&Value::Integer(45)));
    let m3 = c2
        .eval_module_with(
            src,
            "c3.mjs",
            |_, _| Err(HostError::new("none")),
            ModuleOptions { cached_data: Some(b"junk"), ..Default::default() },
        )
        .unwrap();
    assert!(m3.cache_rejected);
}

#[test]
fn resolve_specifier_rules() {
    use polyracer::resolve_specifier as r;
    assert_eq!(r("./b.js", "/x/y/a.js"), "/x/y/b.js");
    assert_eq!(r("../b.js", "/x/y/a.js"), "/x/b.js");
    assert_eq!(r("../../../b.js", "/x/a.js"), "/b.js");
    assert_eq!(r("./b.js", "a.js"), "b.js");
    assert_eq!(r("../b.js", "dir/a.js"), "b.js");
    assert_eq!(r("../b.js", "a.js"), "../b.js");
    assert_eq!(r("/abs.js", "/x/y/a.js"), "/abs.js");
    assert_eq!(r("lodash", "/x/a.js"), "lodash");
    assert_eq!(r("./b.js", "https://h.example/x/a.js"), "https://h.example/x/b.js");
    assert_eq!(r("../../b.js", "https://h.example/x/a.js"), "https://h.example/b.js");
    assert_eq!(r("/c.js", "file:///x/a.js"), "file:///c.js");
}

// ---------------------------------------------------------------- conformance

mod conformance {
    use super::*;
    use serde_json::{json, Value as J};

    /// The shared value encoding of `conformance/README.md`.
    pub fn encode(v: &Value) -> J {
        match v {
            Value::Undefined => json!({"$undefined": true}),
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Integer(i) => J::from(*i),
            Value::Number(n) if n.is_nan() => json!({"$float": "NaN"}),
            Value::Number(n) if n.is_infinite() => json!({"$float": if *n > 0.0 { "Infinity" } else { "-Infinity" }}),
            Value::Number(n) if *n == 0.0 && n.is_sign_negative() => json!({"$float": "-0"}),
            Value::Number(n) => J::Number(serde_json::Number::from_f64(*n).unwrap()),
            Value::BigInt(b) => json!({"$bigint": b.to_string()}),
            Value::String(s) => J::String(s.clone()),
            Value::Date(ms) => json!({"$date": *ms as i64}),
            Value::Bytes(b) => json!({"$bytes": b}),
            Value::Array(a) => J::Array(a.iter().map(encode).collect()),
            Value::Object(o) => J::Object(o.iter().map(|(k, v)| (k.clone(), encode(v))).collect()),
            Value::Map(m) => json!({"$map": m.iter().map(|(k, v)| json!([encode(k), encode(v)])).collect::<Vec<_>>()}),
            Value::Set(s) => json!({"$set": s.iter().map(encode).collect::<Vec<_>>()}),
            Value::Error(e) => json!({"$error": {"name": e.name, "message": e.message}}),
            Value::Handle(h) => json!({"$handle": h.kind().name()}),
        }
    }

    pub fn decode(j: &J) -> Value {
        match j {
            J::Null => Value::Null,
            J::Bool(b) => Value::Bool(*b),
            J::Number(n) if n.is_f64() => Value::Number(n.as_f64().unwrap()),
            J::Number(n) => Value::from(n.as_i64().unwrap()),
            J::String(s) => Value::String(s.clone()),
            J::Array(a) => Value::Array(a.iter().map(decode).collect()),
            J::Object(o) if o.len() == 1 && o.keys().next().unwrap().starts_with('$') => {
                let (k, v) = o.iter().next().unwrap();
                match k.as_str() {
                    "$undefined" => Value::Undefined,
                    "$float" => Value::Number(match v.as_str().unwrap() {
                        "NaN" => f64::NAN,
                        "Infinity" => f64::INFINITY,
                        "-Infinity" => f64::NEG_INFINITY,
                        "-0" => -0.0,
                        other => panic!("bad $float {other}"),
                    }),
                    "$bigint" => Value::BigInt(v.as_str().unwrap().parse().unwrap()),
                    "$date" => Value::Date(v.as_f64().unwrap()),
                    "$bytes" => Value::Bytes(v.as_array().unwrap().iter().map(|b| b.as_u64().unwrap() as u8).collect()),
                    "$map" => {
                        Value::Map(v.as_array().unwrap().iter().map(|p| (decode(&p[0]), decode(&p[1]))).collect())
                    }
                    "$set" => Value::Set(v.as_array().unwrap().iter().map(decode).collect()),
                    other => panic!("cannot decode {other} as an argument"),
                }
            }
            J::Object(o) => Value::Object(o.iter().map(|(k, v)| (k.clone(), decode(v))).collect()),
        }
    }

    fn run_case(case: &J) -> Result<(), String> {
        // Options go through the same validation as every binding's: a
        // context that cannot be created (bad `memory_limit`,
        // `timeout_ms`) is the case's outcome, checked like any other error.
        let ms = polyracer::limits::TimeUnit::Milliseconds;
        let opts =
            polyracer::limits::optional_timeout(case.get("timeout_ms").and_then(J::as_f64), ms).and_then(|timeout| {
                let memory_limit = case.get("memory_limit").and_then(J::as_f64);
                let memory_limit = memory_limit.map(polyracer::limits::memory_limit_f64).transpose()?;
                Ok(ContextOptions { timeout, memory_limit, ..Default::default() })
            });
        let result = match opts.and_then(Context::new) {
            Err(e) => Err(e),
            Ok(c) => {
                if let Some(setup) = case.get("setup").and_then(J::as_str) {
                    c.eval(setup).map_err(|e| format!("setup failed: {e}"))?;
                }
                let await_promise = case.get("await").and_then(J::as_bool).unwrap_or(false);
                let eo = EvalOptions { await_promise, ..Default::default() };
                if let Some(target) = case.get("call").and_then(J::as_str) {
                    let args: Vec<Value> = case["args"].as_array().unwrap().iter().map(decode).collect();
                    c.call_with(target, &args, eo)
                } else {
                    c.eval_with(case["source"].as_str().unwrap(), eo)
                }
            }
        };
        let expect = &case["expect"];
        match (result, expect.get("error").and_then(J::as_str)) {
            (Ok(v), None) => {
                let got = encode(&v);
                // Integral floats and NaN compare by the encoding's rules.
                if got == expect["value"] {
                    Ok(())
                } else {
                    Err(format!("expected {} got {}", expect["value"], got))
                }
            }
            (Ok(v), Some(kind)) => Err(format!("expected {kind}, got value {}", encode(&v))),
            (Err(e), None) => Err(format!("expected {}, got error {e:?}", expect["value"])),
            (Err(e), Some(kind)) => {
                if e.kind() != kind {
                    return Err(format!("expected {kind}, got {e:?}"));
                }
                if let Some(ex) = e.exception() {
                    if let Some(name) = expect.get("name").and_then(J::as_str) {
                        if ex.name != name {
                            return Err(format!("expected name {name}, got {}", ex.name));
                        }
                    }
                    if let Some(msg) = expect.get("message").and_then(J::as_str) {
                        if ex.message != msg {
                            return Err(format!("expected message {msg:?}, got {:?}", ex.message));
                        }
                    }
                }
                if let Some(part) = expect.get("message_contains").and_then(J::as_str) {
                    if !e.to_string().contains(part) {
                        return Err(format!("expected message containing {part:?}, got {e}"));
                    }
                }
                Ok(())
            }
        }
    }

    #[test]
    fn conformance_cases() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../conformance");
        let dir = root.join("cases");
        // The one pinned case count every runner checks (conformance/README.md).
        let pinned: J = serde_json::from_str(&std::fs::read_to_string(root.join("count.json")).unwrap()).unwrap();
        let pinned = pinned["count"].as_u64().expect("conformance/count.json has a numeric \"count\"") as usize;
        let mut failures = Vec::new();
        let mut names = std::collections::HashSet::new();
        let mut count = 0;
        let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
        files.sort();
        for file in files {
            let cases: Vec<J> = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
            for case in &cases {
                count += 1;
                let name = case["name"].as_str().expect("every case has a name");
                assert!(names.insert(name.to_string()), "two cases are named {name:?}");
                if let Err(e) = run_case(case) {
                    failures.push(format!("{}: {}: {e}", file.file_name().unwrap().to_string_lossy(), case["name"]));
                }
            }
        }
        assert_eq!(count, pinned, "{} holds {count} cases; conformance/count.json says {pinned}", dir.display());
        assert!(
            failures.is_empty(),
            "{} of {count} conformance cases failed:\n{}",
            failures.len(),
            failures.join("\n")
        );
    }
}

// ---------------------------------------------------------------- docs

#[path = "support/safety.rs"]
mod safety;

#[path = "support/asynchronous.rs"]
mod asynchronous;

#[path = "../../docs/examples/rust/quickstart.rs"]
mod quickstart;

#[test]
fn docs_rust_quickstart() {
    quickstart::main().unwrap();
}

#[path = "support/fuzz_regressions.rs"]
mod fuzz_regressions;

#[path = "support/threads.rs"]
mod threads;

#[path = "support/transfer.rs"]
mod transfer;

#[test]
fn exceptions_carry_their_stack_frames_as_data() {
    let c = ctx();
    let src = "function inner() { throw new TypeError('bad') }\nfunction outer() { inner() }\nouter()";
    match c.eval_with(src, EvalOptions { filename: Some("app.js".into()), ..Default::default() }).unwrap_err() {
        Error::Js(e) => {
            let names: Vec<_> = e.frames.iter().map(|f| f.function.as_deref()).collect();
            assert_eq!(names, [Some("inner"), Some("outer"), None], "{:?}", e.frames);
            assert_eq!(e.frames[0].file.as_deref(), Some("app.js"));
            assert_eq!((e.frames[0].line, e.frames[0].column), (1, 26));
            assert_eq!((e.frames[1].line, e.frames[2].line), (2, 3));
            assert!(e.stack.contains("at inner (app.js:1:26)"), "{}", e.stack);
        }
        other => panic!("{other:?}"),
    }
    // A syntax error has one frame: where it is.
    match c.eval_with("let x = ;", EvalOptions { filename: Some("bad.js".into()), ..Default::default() }).unwrap_err() {
        Error::Parse(e) => {
            assert_eq!(e.frames.len(), 1, "{:?}", e.frames);
            assert_eq!(e.frames[0].file.as_deref(), Some("bad.js"));
            assert_eq!((e.frames[0].line, e.frames[0].column), (1, 9));
        }
        other => panic!("{other:?}"),
    }
    // A thrown non-Error value: where it was thrown.
    match c.eval("function f() { throw 42 }\nf()").unwrap_err() {
        Error::Js(e) => assert_eq!(e.frames.first().map(|f| (f.function.as_deref(), f.line)), Some((Some("f"), 1))),
        other => panic!("{other:?}"),
    }
}
