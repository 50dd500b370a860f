//! Hostile input and option values (issue: "no input aborts the host,
//! limits really limit"). Included from `core.rs` so it shares its V8 link.

use std::time::Duration;

use polyracer::limits::{self, TimeUnit};
use polyracer::{Context, ContextOptions, Error, EvalOptions, ModuleOptions, Value};
use proptest::prelude::*;

fn limited(bytes: usize) -> Context {
    Context::new(ContextOptions { memory_limit: Some(bytes), ..Default::default() }).unwrap()
}

fn invalid(r: polyracer::Result<impl std::fmt::Debug>, needle: &str) {
    match r {
        Err(Error::InvalidArgument(m)) => assert!(m.contains(needle), "{m:?} lacks {needle:?}"),
        other => panic!("expected InvalidArgument containing {needle:?}, got {other:?}"),
    }
}

// ------------------------------------------------------------ memory limits

/// V8 reports up to 256 MiB exactly as asked; above, its young generation
/// is sized in steps that add up to 48 MiB (measured over 200 MiB–3 GiB).
/// The rest of the limit is enforced by polyracer's own total check (see
/// `a_context_left_over_its_limit_reports_out_of_memory`).
const YOUNG_GENERATION_SLACK: usize = 48 << 20;

/// Values users pick: decimal round numbers, odd sizes, powers of two and
/// their neighbours. Before the fix, 100,000,000 and 200,000,000 tripped a
/// V8 CHECK (SIGTRAP) because the code range V8 reserves for a limit under
/// 128 MiB must be a whole number of pages.
#[test]
fn memory_limits_users_pick_give_working_contexts() {
    for bytes in [
        4 << 20,
        5_000_000,
        10_000_000,
        (32 << 20) - 1,
        33_554_433,
        100_000_000,
        123_456_789,
        134_217_727,
        134_217_728,
        200_000_000,
        999_999_999,
        3_000_000_000,
    ] {
        let c = limited(bytes);
        assert_eq!(c.eval("[1, 2, 3].map((x) => x * 2).length").unwrap(), Value::Integer(3), "{bytes}");
        let limit = c.heap_stats().unwrap().heap_size_limit;
        assert!(limit <= bytes + YOUNG_GENERATION_SLACK, "{bytes}: V8 heap limit {limit}");
    }
}

#[test]
fn memory_limits_out_of_range_are_invalid_arguments() {
    for bytes in [0usize, 1, 1000, (4 << 20) - 1, (1 << 40) + 1, usize::MAX / 2, usize::MAX] {
        invalid(Context::new(ContextOptions { memory_limit: Some(bytes), ..Default::default() }), "4194304 (4 MiB)");
    }
    invalid(limits::memory_limit(-1), "from 4194304");
    invalid(limits::memory_limit(i128::MAX), "not 170141183460469231731687303715884105727");
    for f in [f64::NAN, f64::INFINITY, -1.0, 2.5e8 + 0.5, 1e300] {
        invalid(limits::memory_limit_f64(f), "whole number of bytes");
    }
    // Rounded down to whole MiB: 200,000,000 bytes is 190.7 MiB.
    assert_eq!(limits::memory_limit_f64(2e8).unwrap(), 190 << 20);
}

#[test]
fn byte_sizes_parse_like_the_cli_documents() {
    assert_eq!(limits::parse_byte_size("64M").unwrap(), 64 << 20);
    assert_eq!(limits::parse_byte_size(" 1.5G ").unwrap(), 3 << 29);
    assert_eq!(limits::parse_byte_size("100000000").unwrap(), 100_000_000);
    assert_eq!(limits::parse_byte_size("512k").unwrap(), 512 << 10);
    assert_eq!(limits::parse_byte_size("99999999999999999999999").unwrap(), 99_999_999_999_999_999_999_999);
    for bad in ["", "M", "-5M", "64Q", "1e9", "NaNM", "1..5G", "0x10"] {
        invalid(limits::parse_byte_size(bad), "is not a size");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]

    /// Any byte count either gives a working context whose V8 heap limit is
    /// at most the one asked for, or `InvalidArgument`; never an abort.
    #[test]
    fn any_memory_limit_works_or_is_rejected(bytes in prop_oneof![
        0usize..(64 << 20),
        (64usize << 20)..(4 << 30),
        (1usize << 39)..(1 << 41),
        any::<usize>(),
    ]) {
        match Context::new(ContextOptions { memory_limit: Some(bytes), ..Default::default() }) {
            Ok(c) => {
                prop_assert!((4 << 20..=1 << 40).contains(&bytes));
                prop_assert_eq!(c.eval("'x'.repeat(1000).length").unwrap(), Value::Integer(1000));
                let limit = c.heap_stats().unwrap().heap_size_limit;
                prop_assert!(limit <= bytes + YOUNG_GENERATION_SLACK, "{} → {}", bytes, limit);
            }
            Err(Error::InvalidArgument(m)) => {
                prop_assert!(!(4 << 20..=1 << 40).contains(&bytes), "{} rejected: {}", bytes, m);
                prop_assert!(m.contains("from 4194304 (4 MiB) to 1099511627776 (1 TiB)"));
            }
            Err(other) => prop_assert!(false, "{}: {:?}", bytes, other),
        }
    }

    /// Durations in any unit: valid ones convert exactly, the rest are
    /// `InvalidArgument` with the unit in the message; none panics.
    #[test]
    fn any_timeout_number_converts_or_is_rejected(v in prop_oneof![
        any::<f64>(),
        0.0f64..1e4,
        Just(f64::NAN), Just(f64::INFINITY), Just(f64::NEG_INFINITY), Just(-0.0), Just(1e20),
    ], ms in any::<bool>()) {
        let unit = if ms { TimeUnit::Milliseconds } else { TimeUnit::Seconds };
        let per_second = if ms { 1000.0 } else { 1.0 };
        match limits::timeout(v, unit) {
            Ok(d) => {
                prop_assert!(v >= 0.0 && v / per_second <= limits::MAX_TIMEOUT.as_secs_f64());
                prop_assert!((d.as_secs_f64() - v / per_second).abs() <= 1e-6 * (1.0 + v / per_second));
            }
            Err(Error::InvalidArgument(m)) => {
                prop_assert!(!(v >= 0.0 && v / per_second <= limits::MAX_TIMEOUT.as_secs_f64()));
                let unit_name = if ms { "milliseconds" } else { "seconds" };
                prop_assert!(m.starts_with(&format!("timeout must be a number of {unit_name} from 0 to ")), "{}", m);
            }
            Err(other) => prop_assert!(false, "{:?}", other),
        }
    }
}

#[test]
fn huge_durations_from_rust_are_invalid_arguments_not_panics() {
    invalid(Context::new(ContextOptions { timeout: Some(Duration::MAX), ..Default::default() }), "timeout must be");
    let c = Context::new(ContextOptions::default()).unwrap();
    let opts = EvalOptions { timeout: Some(Duration::from_secs(u64::MAX)), ..Default::default() };
    invalid(c.eval_with("1", opts), "timeout must be");
    invalid(c.run_event_loop(Some(Duration::MAX)), "timeout must be");
    // The context is still fine.
    assert_eq!(c.eval("2").unwrap(), Value::Integer(2));
    invalid(limits::timeout(1e20, TimeUnit::Seconds), "not 100000000000000000000");
}

// ------------------------------------------------------------ backing stores

/// The reproducer: 60 × 64 MiB typed arrays under a 64 MiB limit
/// reached 2.3 GB RSS. Now the allocation fails inside JS.
#[test]
fn typed_arrays_count_against_the_memory_limit() {
    let c = limited(64 << 20);
    let r = c.eval(
        "let a = []; try { for (let i = 0; i < 60; i++) a.push(new Uint8Array(16 << 20).fill(1)) } \
         catch (e) { [e.name, e.message, a.length] }",
    );
    let Value::Array(items) = r.unwrap() else { panic!() };
    assert_eq!(items[0], Value::from("RangeError"));
    assert_eq!(items[1], Value::from("Array buffer allocation failed"));
    let Value::Integer(n) = items[2] else { panic!() };
    assert!((1..4).contains(&n), "{n} buffers of 16 MiB fit under 64 MiB");
    // External memory shows in the statistics.
    let stats = c.heap_stats().unwrap();
    assert!(stats.external_memory >= (n as usize) * (16 << 20), "{stats:?}");
    // Releasing them makes room again.
    assert_eq!(c.eval("a = null; new Uint8Array(32 << 20).length").unwrap(), Value::Integer(32 << 20));
}

#[test]
fn every_kind_of_buffer_is_refused_past_the_limit() {
    let c = limited(32 << 20);
    for (what, src) in [
        ("ArrayBuffer", "for (;;) keep.push(new ArrayBuffer(256 << 20))"),
        ("SharedArrayBuffer", "for (;;) keep.push(new SharedArrayBuffer(8 << 20))"),
        ("resize", "const b = new ArrayBuffer(0, {maxByteLength: 1 << 30}); keep.push(b); b.resize(1 << 30)"),
        ("grow", "const s = new SharedArrayBuffer(0, {maxByteLength: 1 << 30}); keep.push(s); s.grow(1 << 30)"),
        ("wasm", "const m = new WebAssembly.Memory({initial: 1, maximum: 16384}); keep.push(m); for (;;) m.grow(64)"),
        ("array from bytes", "for (;;) keep.push(new Float64Array(1 << 20))"),
    ] {
        let r = c.eval(&format!("globalThis.keep = []; try {{ {src}; 'no error' }} catch (e) {{ e.name }}"));
        assert_eq!(r.unwrap(), Value::from("RangeError"), "{what}");
        c.eval("keep = null").unwrap();
        c.low_memory_notification().unwrap();
    }
}

#[test]
fn a_context_left_over_its_limit_reports_out_of_memory() {
    // Resizable buffers' initial length is committed by V8's page
    // allocator, which no hook sees: the end-of-call check catches it.
    let c = limited(32 << 20);
    let r = c.eval("globalThis.keep = []; for (let i = 0; i < 8; i++) keep.push(new ArrayBuffer(8 << 20, {maxByteLength: 16 << 20})); 1");
    assert!(matches!(r, Err(Error::OutOfMemory)), "{r:?}");
    let r = c.eval("keep = null");
    assert!(r.is_ok(), "{r:?} {:?}", c.heap_stats());
    assert_eq!(c.eval("1 + 1").unwrap(), Value::Integer(2));
}

#[test]
fn host_bytes_count_against_the_memory_limit() {
    let c = limited(16 << 20);
    c.set_global("small", Value::Bytes(vec![7; 1 << 20])).unwrap();
    assert_eq!(c.eval("small.length").unwrap(), Value::Integer(1 << 20));
    match c.set_global("big", Value::Bytes(vec![7; 64 << 20])) {
        Err(Error::Conversion(m)) => assert!(m.contains("do not fit in the context's memory limit"), "{m}"),
        other => panic!("{other:?}"),
    }
    let held = c.heap_stats().unwrap().external_memory;
    assert!(held >= 1 << 20, "{held}");
    // Freed host bytes return to the budget.
    c.eval("small = null").unwrap();
    c.low_memory_notification().unwrap();
    c.set_global("again", Value::Bytes(vec![1; 8 << 20])).unwrap();
}

// ------------------------------------------------------------ error kinds

#[test]
fn a_timeout_during_result_conversion_is_a_timeout() {
    let c = Context::new(ContextOptions::default()).unwrap();
    let opts = EvalOptions { timeout: Some(Duration::from_millis(100)), ..Default::default() };
    let r = c.eval_with("({get x() { for (;;) {} }})", opts.clone());
    assert!(matches!(r, Err(Error::Timeout)), "{r:?}");
    let r = c.eval_with("new Proxy({}, {ownKeys() { for (;;) {} }})", opts.clone());
    // Proxies come back as handles without running traps.
    assert!(r.is_ok(), "{r:?}");
    let r = c.eval_with("[1, {get y() { for (;;) {} }}]", opts);
    assert!(matches!(r, Err(Error::Timeout)), "{r:?}");
    assert_eq!(c.eval("1").unwrap(), Value::Integer(1));
}

#[test]
fn a_timeout_in_module_resolution_or_a_host_callback_is_a_timeout() {
    let c = Context::new(ContextOptions::default()).unwrap();
    let opts = ModuleOptions { timeout: Some(Duration::from_millis(100)), ..Default::default() };
    let r = c.eval_module_with(
        "import {x} from 'slow'; export const y = x",
        "main.mjs",
        |_, _| {
            std::thread::sleep(Duration::from_millis(300));
            Ok("export const x = 1; for (;;) {}".into())
        },
        opts,
    );
    assert!(matches!(r, Err(Error::Timeout)), "{r:?}");
    c.expose("slow", |_, _| {
        std::thread::sleep(Duration::from_millis(300));
        Ok(Value::Integer(1))
    })
    .unwrap();
    let opts = EvalOptions { timeout: Some(Duration::from_millis(100)), ..Default::default() };
    let r = c.eval_with("slow(); for (;;) {}", opts);
    assert!(matches!(r, Err(Error::Timeout)), "{r:?}");
}

#[test]
fn a_timeout_in_snapshot_warmup_is_a_timeout() {
    let r = polyracer::Snapshot::create_with_timeout("for (;;) {}", Duration::from_millis(100));
    assert!(matches!(r, Err(Error::Timeout)), "{r:?}");
}

#[test]
fn invalid_dates_are_conversion_errors() {
    let c = Context::new(ContextOptions::default()).unwrap();
    match c.eval("[new Date(NaN)]") {
        Err(Error::Conversion(m)) => assert_eq!(m, "invalid Date (its time value is NaN) at $[0]"),
        other => panic!("{other:?}"),
    }
}

/// `memory.grow` executed by WebAssembly code never passes through JS, so
/// only the periodic check (an interrupt every 10 ms) and the end-of-call
/// check see it.
#[test]
fn wasm_code_growing_its_memory_is_stopped_at_the_limit() {
    // (module (memory (export "mem") 1 65536)
    //   (func (export "grow") (param i32) (result i32) local.get 0 memory.grow))
    const MODULE: &str = "new Uint8Array([0,97,115,109,1,0,0,0, 1,6,1,96,1,127,1,127, 3,2,1,0, \
        5,6,1,1,1,128,128,4, 7,14,2,3,109,101,109,2,0,4,103,114,111,119,0,0, 10,8,1,6,0,32,0,64,0,11])";
    let c = Context::new(ContextOptions {
        memory_limit: Some(64 << 20),
        timeout: Some(Duration::from_secs(20)),
        ..Default::default()
    })
    .unwrap();
    let r = c.eval(&format!(
        "(() => {{ const {{exports}} = new WebAssembly.Instance(new WebAssembly.Module({MODULE})); \
         globalThis.mem = exports.mem; \
         for (;;) {{ if (exports.grow(256) < 0) break; new Uint8Array(exports.mem.buffer).fill(1) }} }})(); 'grew'"
    ));
    assert!(matches!(r, Err(Error::OutOfMemory)), "{r:?}");
    // Well before 4 GiB: the check stopped it within a few grows.
    let held = c.heap_stats().unwrap().external_memory;
    assert!(held < 512 << 20, "{held}");
    // Releasing the memory makes the context usable again.
    c.eval("mem = null").unwrap();
    assert_eq!(c.eval("1 + 1").unwrap(), Value::Integer(2));
}

/// Running a script's top-level function again after it declared a
/// top-level `let`/`const`/`class` aborted V8 (`IsNativeContext` check)
/// when the script was kept bound (the eval cache, compiled `Script`s).
#[test]
fn rerunning_top_level_lexical_declarations_is_a_syntax_error_not_an_abort() {
    let c = Context::new(ContextOptions::default()).unwrap();
    for src in ["let a = 1; a", "const b = 2; b", "class C {}; 3"] {
        assert!(c.eval(src).is_ok(), "{src}");
        match c.eval(src) {
            Err(polyracer::Error::Js(e) | polyracer::Error::Parse(e)) => {
                assert_eq!(e.name, "SyntaxError", "{src}: {e:?}");
                assert!(e.message.contains("already been declared"), "{src}: {e:?}");
            }
            other => panic!("{src}: expected a SyntaxError, got {other:?}"),
        }
    }
    let s = c.compile("let d = 4; d", Default::default()).unwrap();
    assert_eq!(s.run().unwrap(), polyracer::Value::Integer(4));
    match s.run() {
        Err(polyracer::Error::Js(e) | polyracer::Error::Parse(e)) => assert_eq!(e.name, "SyntaxError"),
        other => panic!("expected a SyntaxError, got {other:?}"),
    }
    // Scripts without top-level lexicals still run again and again.
    let s = c.compile("var e = (globalThis.e || 0) + 1; e", Default::default()).unwrap();
    for i in 1..=3 {
        assert_eq!(s.run().unwrap(), polyracer::Value::Integer(i));
    }
    assert_eq!(c.eval("a + b").unwrap(), polyracer::Value::Integer(3));
}
