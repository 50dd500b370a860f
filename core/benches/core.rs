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
    ctx.eval("globalThis.viaHost = () => host_id(1)").unwrap();
    println!("\ninterleaved latency: each call timed alone, host busy-work between calls (µs, p50 / p99)");
    println!(
        "| {:<34} | {:>13} | {:>13} | {:>13} | {:>13} | {:>13} |",
        "case", "gap 0", "gap 5", "gap 50", "gap 200", "gap 1000"
    );
    interleaved("eval `1+1`", || {
        black_box(ctx.eval("1+1").unwrap());
    });
    interleaved("call `(a,b)=>a+b` (handle)", || {
        black_box(add.call(&[Value::Integer(1), Value::Integer(2)]).unwrap());
    });
    interleaved("host callback round trip", || {
        black_box(ctx.call("viaHost", &[]).unwrap());
    });
    idle_contexts(1000);
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

/// Host busy-work for about `micros` µs (a real program's work between calls).
fn busy(micros: u64) {
    let end = Instant::now() + Duration::from_micros(micros);
    let mut x = 0u64;
    while Instant::now() < end {
        x = black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
    }
}

/// Each call timed on its own with host work between calls: the pattern
/// that tight loops hide (a parked thread costs a wake-up per call).
fn interleaved(name: &str, mut op: impl FnMut()) {
    let mut cells = Vec::new();
    for gap in [0u64, 5, 50, 200, 1000] {
        let n = if gap >= 200 { 2_000 } else { 20_000 };
        for _ in 0..200 {
            op();
        }
        let mut times = Vec::with_capacity(n);
        for _ in 0..n {
            busy(gap);
            let t = Instant::now();
            op();
            times.push(t.elapsed().as_secs_f64() * 1e6);
        }
        times.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let p = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
        cells.push(format!("{:.2} / {:.2}", p(0.5), p(0.99)));
    }
    println!(
        "| {name:<34} | {:>13} | {:>13} | {:>13} | {:>13} | {:>13} |",
        cells[0], cells[1], cells[2], cells[3], cells[4]
    );
}

/// `n` contexts alive at once: no thread each, and what they cost.
fn idle_contexts(n: usize) {
    let threads_before = thread_count();
    let rss_before = rss_kib();
    let t = Instant::now();
    let all: Vec<Context> = (0..n).map(|_| Context::new(ContextOptions::default()).unwrap()).collect();
    for c in &all {
        black_box(c.eval("1").unwrap());
    }
    let created = t.elapsed();
    println!(
        "\n{n} idle contexts: created and used in {:.2} s, threads {} → {}, RSS +{} MiB",
        created.as_secs_f64(),
        threads_before,
        thread_count(),
        (rss_kib().saturating_sub(rss_before)) / 1024
    );
    drop(all);
}

fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task").map(|d| d.count()).unwrap_or(0)
}

fn rss_kib() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}
