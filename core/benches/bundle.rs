//! Code cache and snapshot benchmarks on a real bundle:
//! `node_modules/typescript/lib/typescript.js` (~9 MB), installed into
//! `core/benches/fixtures` by `ci/setup.sh`.
//!
//! Run: `cargo bench -p polyracer --bench bundle` (or `ci/bench.sh`).
//! Targets: consuming the cache ≥ 5× faster than a cold compile; starting a
//! context from a snapshot holding the bundle ≥ 20× faster than creating a
//! context and evaluating the bundle.

use std::time::{Duration, Instant};

use polyracer::{CompileOptions, Context, ContextOptions, Snapshot, Value};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("benches/fixtures/node_modules/typescript/lib/typescript.js");
    let Ok(bundle) = std::fs::read_to_string(&path) else {
        eprintln!("{} is missing: run ci/setup.sh (npm installs the fixture)", path.display());
        std::process::exit(1);
    };
    let runs = 5;
    println!("bundle: typescript.js, {:.1} MB, V8 {}\n", bundle.len() as f64 / 1e6, polyracer::v8_version());

    // Each compile gets a fresh context: V8's in-isolate compilation cache
    // would otherwise make every compile after the first a lookup.
    let compile = |cached: Option<&[u8]>, produce: bool| {
        let ctx = Context::new(ContextOptions::default()).unwrap();
        let t = Instant::now();
        let s = ctx
            .compile(
                &bundle,
                CompileOptions { filename: Some("typescript.js"), cached_data: cached, produce_cache: produce },
            )
            .unwrap();
        (t.elapsed(), s)
    };
    let cold = median((0..runs).map(|_| compile(None, false).0).collect());
    let (_, producer) = compile(None, true);
    let cache = producer.cached_data().expect("cache produced").to_vec();
    let warm = median(
        (0..runs)
            .map(|_| {
                let (t, s) = compile(Some(&cache), false);
                assert!(!s.cache_rejected(), "cache rejected");
                t
            })
            .collect(),
    );

    let eval_start = median(
        (0..runs)
            .map(|_| {
                let t = Instant::now();
                let ctx = Context::new(ContextOptions::default()).unwrap();
                ctx.eval_with(
                    &bundle,
                    polyracer::EvalOptions { filename: Some("typescript.js".into()), ..Default::default() },
                )
                .unwrap();
                let v = ctx.eval("typeof ts.createSourceFile").unwrap();
                let e = t.elapsed();
                assert_eq!(v, Value::from("function"));
                ctx.dispose();
                e
            })
            .collect(),
    );
    let t = Instant::now();
    let snap = Snapshot::create(&bundle).unwrap();
    let build = t.elapsed();
    let snap_start = median(
        (0..runs)
            .map(|_| {
                let t = Instant::now();
                let ctx = Context::new(ContextOptions { snapshot: Some(snap.clone()), ..Default::default() }).unwrap();
                let v = ctx.eval("typeof ts.createSourceFile").unwrap();
                let e = t.elapsed();
                assert_eq!(v, Value::from("function"));
                ctx.dispose();
                e
            })
            .collect(),
    );
    // The snapshot context really works: transpile something.
    let ctx = Context::new(ContextOptions { snapshot: Some(snap.clone()), ..Default::default() }).unwrap();
    let out = ctx.eval("ts.transpile('let x: number = 1 + 1;')").unwrap();
    assert!(matches!(&out, Value::String(s) if s.contains("var x = 1 + 1")), "{out:?}");

    println!("| case | median of {runs} | ratio | target |");
    println!("|---|---|---|---|");
    println!("| compile, cold | {} | | |", ms(cold));
    println!(
        "| compile, consuming the code cache ({:.1} MB) | {} | {:.1}× faster | ≥ 5× |",
        cache.len() as f64 / 1e6,
        ms(warm),
        cold.as_secs_f64() / warm.as_secs_f64()
    );
    println!("| new context + eval bundle | {} | | |", ms(eval_start));
    println!(
        "| new context from snapshot ({:.1} MB, built in {}) | {} | {:.1}× faster | ≥ 20× |",
        snap.as_bytes().len() as f64 / 1e6,
        ms(build),
        ms(snap_start),
        eval_start.as_secs_f64() / snap_start.as_secs_f64()
    );
}
