//! Reproducers found by the cargo-fuzz targets in `core/fuzz` (see its
//! README), each rebuilt from the public API so it survives V8 upgrades.
//! (The `framing` finding, a deliberately re-sealed code cache, is out of
//! scope: caches are trusted input, see `docs/cli.md` and the fuzz README.)
//! Included from `core.rs` so it shares its V8 link.

use std::time::Duration;

use polyracer::{Context, ContextOptions, Error, HostError, ModuleOptions, Value};

fn no_imports(spec: &str, _referrer: &str) -> Result<String, HostError> {
    Err(HostError::new(format!("no module {spec}")))
}

/// Found by `modules` after ~4,000 executions (input `LQE6bSw=`: a root
/// module named "" whose body is `const dyn0 = await import("");`).
/// A module that dynamically imports itself, or a module still being
/// evaluated (a cycle: `a` imports `b`, `b` calls `import("./a.mjs")`),
/// while its evaluation is running: `dynamic_import` (core/src/module.rs)
/// finds the module by name in status `Evaluating` and calls
/// `Module::Evaluate` on it synchronously, which V8 forbids:
/// `Check failed: module_status == kLinked || module_status ==
/// kEvaluatingAsync || module_status == kEvaluated` (SIGTRAP, the host
/// dies). The spec continues a dynamic import in a later job, by which time
/// the importer has finished (or is evaluating-async); `import_into` now
/// retries from a microtask when the status is `Evaluating`, and the import
/// settles with the namespace once the module finished.
#[test]
#[ignore = "run by module_importing_itself_is_not_fatal in its own process"]
fn module_importing_itself_helper() {
    let ctx = Context::new(ContextOptions::default()).unwrap();
    // Not awaited: the promise can settle after the module finishes.
    let m = ctx
        .eval_module(
            "import('./main.mjs').then((ns) => { globalThis.seen = ns.x; }); export const x = 1;",
            "/app/main.mjs",
            no_imports,
        )
        .expect("a module may import itself");
    assert_eq!(m.namespace.get("x"), Some(&Value::Integer(1)));
    assert_eq!(ctx.eval("globalThis.seen").unwrap(), Value::Integer(1));

    // The same through a cycle.
    let ctx = Context::new(ContextOptions::default()).unwrap();
    let m = ctx
        .eval_module("import './b.mjs'; export const a = 'a';", "/app/a.mjs", |spec, _| match spec {
            "./b.mjs" => Ok("import('./a.mjs').then((ns) => { globalThis.seenA = ns.a; });".to_owned()),
            other => Err(HostError::new(format!("no module {other}"))),
        })
        .expect("a cycle through a dynamic import");
    assert_eq!(m.namespace.get("a"), Some(&Value::from("a")));
    assert_eq!(ctx.eval("globalThis.seenA").unwrap(), Value::from("a"));

    // The fuzzer's form: awaiting its own namespace can never finish, so
    // the module must end with an error or its timeout, not an abort.
    let ctx = Context::new(ContextOptions::default()).unwrap();
    let r = ctx.eval_module_with(
        "const dyn0 = await import(\"\");",
        "",
        no_imports,
        ModuleOptions { timeout: Some(Duration::from_secs(5)), ..Default::default() },
    );
    assert!(matches!(r, Err(Error::Js(_) | Error::Timeout)), "{r:?}");
}

/// See `module_importing_itself_helper`; in a child process because before
/// the fix the reproducer aborted the whole process.
#[test]
fn module_importing_itself_is_not_fatal() {
    super::run_isolated("fuzz_regressions::module_importing_itself_helper");
}

/// Found by `options` (input `xzR2BEoJAAAAAAAABwAAAAAAAAAAxzJ2AA==`: no
/// memory limit, a per-call timeout of 0, a heap-filling loop) and again
/// by the soak run (`ci/soak.sh`), where a 20 ms timeout on a loaded
/// machine never fired and `for (;;) {}` held the context for good.
/// Under the owner-thread design the caller computed the deadline before
/// the owner thread started the request; if it passed first, the
/// termination was dropped and the script ran unbounded. Now the call
/// publishes its deadline after it is marked running, and the watchdog
/// thread terminates it by sequence number, so an expired deadline always
/// stops it. The test's own watchdog turns a regression's hang into a
/// failure.
#[test]
fn a_timeout_that_expires_before_the_script_starts_still_fires() {
    let ctx = Context::new(ContextOptions::default()).unwrap();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watchdog = std::thread::spawn({
        let (ctx, done) = (ctx.clone(), done.clone());
        move || {
            let start = std::time::Instant::now();
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                if start.elapsed() > Duration::from_secs(10) {
                    ctx.terminate();
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    });
    let r =
        ctx.eval_with("for (;;) {}", polyracer::EvalOptions { timeout: Some(Duration::ZERO), ..Default::default() });
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    watchdog.join().unwrap();
    assert!(matches!(r, Err(Error::Timeout)), "a zero timeout did not stop the script: {r:?}");
}
