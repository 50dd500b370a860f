//! Core round-trip benchmarks: `cargo bench -p polyracer` (or `ci/bench.sh`).
//!
//! A plain harness (no criterion): each case runs in batches for about a
//! second and reports the median time per operation over the batches.

use std::hint::black_box;
use std::time::{Duration, Instant};

use polyracer::{Context, ContextOptions, Value};

fn measure(name: &str, target: &str, mut op: impl FnMut()) -> f64 {
    // Warm up and size a batch to ~20 ms.
    let mut batch = 1u64;
    loop {
        let t = Instant::now();
        for _ in 0..batch {
            op();
        }
        if t.elapsed() > Duration::from_millis(20) {
            break;
        }
        batch *= 2;
    }
    let mut samples = Vec::new();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(1) || samples.len() < 5 {
        let t = Instant::now();
        for _ in 0..batch {
            op();
        }
        samples.push(t.elapsed().as_secs_f64() / batch as f64);
    }
    samples.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let median = samples[samples.len() / 2];
    println!("| {name:<38} | {:>12} | {target:>10} |", fmt(median));
    median
}

fn fmt(secs: f64) -> String {
    if secs < 1e-6 {
        format!("{:.0} ns", secs * 1e9)
    } else if secs < 1e-3 {
        format!("{:.2} µs", secs * 1e6)
    } else {
        format!("{:.2} ms", secs * 1e3)
    }
}

fn nested_object(target_bytes: usize) -> Value {
    // ~1 MB as JSON: 1000 records with nested arrays and strings.
    let mut items = Vec::new();
    let mut size = 0;
    let mut i = 0i64;
    while size < target_bytes {
        let rec = Value::Object(vec![
            ("id".into(), Value::Integer(i)),
            ("name".into(), Value::String(format!("item number {i}"))),
            ("score".into(), Value::Number(i as f64 * 1.5)),
            ("tags".into(), Value::Array(vec!["alpha".into(), "beta".into(), "gamma".into()])),
            (
                "child".into(),
                Value::Object(vec![("x".into(), Value::Integer(i)), ("ok".into(), Value::Bool(i % 2 == 0))]),
            ),
            ("blob".into(), Value::String("x".repeat(900))),
        ]);
        size += 1000;
        items.push(rec);
        i += 1;
    }
    Value::Object(vec![("items".into(), Value::Array(items))])
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    println!("polyracer core benchmarks (V8 {})\n", polyracer::v8_version());
    println!("| {:<38} | {:>12} | {:>10} |", "case", "median", "target");
    println!("|{:-<40}|{:->14}|{:->12}|", "", "", "");
    let floor = polyracer::round_trip_floor(200_000);
    println!("| {:<38} | {:>12} | {:>10} |", "thread handoff alone (the floor)", fmt(floor.as_secs_f64()), "");
    let ctx = Context::new(ContextOptions::default()).unwrap();
    measure("eval `1+1` round trip", "≤ 1 µs", || {
        black_box(ctx.eval("1+1").unwrap());
    });
    let add = ctx.eval("(a, b) => a + b").unwrap();
    let add = add.as_handle().unwrap().clone();
    measure("call `(a,b)=>a+b` (function handle)", "≤ 0.5 µs", || {
        black_box(add.call(&[Value::Integer(1), Value::Integer(2)]).unwrap());
    });
    ctx.eval("globalThis.add = (a, b) => a + b").unwrap();
    measure("call `add` (global name)", "", || {
        black_box(ctx.call("add", &[Value::Integer(1), Value::Integer(2)]).unwrap());
    });
    measure("context create + dispose", "≤ 1 ms", || {
        let c = Context::new(ContextOptions::default()).unwrap();
        c.dispose();
    });
    let big = nested_object(1 << 20);
    ctx.set_global("big", big.clone()).unwrap();
    measure("1 MB nested object JS → host", "", || {
        black_box(ctx.eval("big").unwrap());
    });
    measure("1 MB nested object host → JS", "", || {
        black_box(ctx.call("(x) => 0", std::slice::from_ref(&big)).unwrap());
    });
    ctx.expose("host_id", |_, mut args| Ok(args.pop().unwrap_or(Value::Undefined))).unwrap();
    let loop_fn = ctx.eval("(n) => { let s = 0; for (let i = 0; i < n; i++) s += host_id(i); return s }").unwrap();
    let loop_fn = loop_fn.as_handle().unwrap().clone();
    let per_batch = 1000;
    measure("host callback round trip (JS → host → JS)", "", || {
        black_box(loop_fn.call(&[Value::Integer(per_batch)]).unwrap());
    });
    println!("\n(the callback row is per {per_batch} callbacks; divide by {per_batch} for one)");
    println!("\nthroughput: N threads, each with its own context (target: 2 threads ≥ 1.7× one)");
    for (label, code) in [
        ("eval `1+1`", "1+1"),
        ("eval a 20k-iteration loop", "(() => { let s = 0; for (let i = 0; i < 20000; i++) s += i; return s })()"),
    ] {
        let one = throughput(1, code);
        let two = throughput(2, code);
        println!("| {label:<26} | 1 thread {one:>10.0}/s | 2 threads {two:>10.0}/s | {:.2}× |", two / one);
    }
}

/// Evaluations per second with `threads` threads, each on its own context.
fn throughput(threads: usize, code: &'static str) -> f64 {
    let run_for = Duration::from_millis(1500);
    let counts: Vec<u64> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(move || {
                    let ctx = Context::new(ContextOptions::default()).unwrap();
                    ctx.eval(code).unwrap();
                    let start = Instant::now();
                    let mut n = 0u64;
                    while start.elapsed() < run_for {
                        black_box(ctx.eval(code).unwrap());
                        n += 1;
                    }
                    ctx.dispose();
                    n
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    counts.iter().sum::<u64>() as f64 / run_for.as_secs_f64()
}
