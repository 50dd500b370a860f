//! The execution model: calls run on the calling thread under the isolate's
//! lock. Many threads, small stacks, deep nesting, terminations racing the
//! start and end of calls, disposal from any thread, and contexts without
//! threads of their own.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use polyracer::{Context, ContextOptions, Error, EvalOptions, Value};

use super::ctx;

fn on_thread<T: Send + 'static>(stack: usize, f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new().stack_size(stack).spawn(f).unwrap().join().unwrap()
}

/// `function f(n) { return f(n + 1) }` until V8 gives up: returns how deep
/// it got and the error's name, measured on the calling thread.
const DEPTH_PROBE: &str =
    "(() => { let d = 0; function f() { d++; f() } try { f() } catch (e) { return [d, e.name] } })()";

fn depth(c: &Context) -> i64 {
    match c.eval(DEPTH_PROBE).unwrap() {
        Value::Array(v) => {
            assert_eq!(v[1], Value::String("RangeError".into()));
            match v[0] {
                Value::Integer(d) => d,
                ref other => panic!("{other:?}"),
            }
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn each_call_runs_on_the_calling_thread() {
    let c = ctx();
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    c.expose("where", {
        let seen = seen.clone();
        move |_, _| {
            seen.lock().unwrap().push(std::thread::current().id());
            Ok(Value::Null)
        }
    })
    .unwrap();
    let mut expected = vec![std::thread::current().id()];
    c.eval("where()").unwrap();
    for _ in 0..3 {
        let c = c.clone();
        let id = on_thread(1 << 20, move || {
            c.eval("where()").unwrap();
            std::thread::current().id()
        });
        expected.push(id);
    }
    assert_eq!(*seen.lock().unwrap(), expected);
}

#[test]
fn contexts_have_no_threads_of_their_own() {
    let threads = || std::fs::read_dir("/proc/self/task").unwrap().count();
    // The first context starts the engine (V8's workers) and the watchdog.
    let first = ctx();
    first.eval("1").unwrap();
    let before = threads();
    let all: Vec<Context> = (0..1000).map(|_| ctx()).collect();
    for (i, c) in all.iter().enumerate() {
        assert_eq!(c.eval(&format!("{i} + 1")).unwrap(), Value::from(i + 1));
    }
    assert_eq!(threads(), before, "1000 contexts must not add threads");
    drop(all);
}

#[test]
fn a_fresh_thread_per_call_works_and_every_thread_sees_one_context() {
    let c = ctx();
    c.eval("globalThis.n = 0").unwrap();
    for _ in 0..300 {
        let c = c.clone();
        on_thread(256 << 10, move || c.eval("n++").unwrap());
    }
    assert_eq!(c.eval("n").unwrap(), Value::Integer(300));
}

#[test]
fn small_stack_threads_get_range_errors_not_crashes() {
    let c = ctx();
    let main_depth = depth(&c);
    for kib in [256usize, 512, 1024] {
        let c2 = c.clone();
        let d = on_thread(kib << 10, move || {
            let d = depth(&c2);
            // Still usable on that thread after the overflow.
            assert_eq!(c2.eval("2 + 2").unwrap(), Value::Integer(4));
            // Deep values convert, or fail with an error, never overflow.
            let r = c2.eval("(() => { let a = []; for (let i = 0; i < 1900; i++) a = [a]; return a })()");
            assert!(matches!(r, Ok(_) | Err(Error::Conversion(_))), "{r:?}");
            d
        });
        assert!(d > 100, "{kib} KiB thread: only {d} frames");
        assert!(d < main_depth, "{kib} KiB thread: {d} frames, main thread {main_depth}");
    }
    // The limit set for a small thread does not stay with the context.
    assert_eq!(depth(&c), main_depth);
}

#[test]
fn deep_js_host_js_nesting_ends_in_a_range_error_on_any_thread() {
    for stack in [1usize << 20, 8 << 20] {
        let d = on_thread(stack, || {
            let c = ctx();
            c.expose("down", |ctx, args| {
                let n = args[0].as_i64().unwrap_or(0);
                ctx.call("step", &[Value::Integer(n + 1)]).map_err(|e| polyracer::HostError::new(e.to_string()))
            })
            .unwrap();
            c.eval("globalThis.step = (n) => n >= 100000 ? n : down(n)").unwrap();
            let r = c.call("step", &[Value::Integer(0)]);
            match r {
                Err(Error::Js(e)) => assert!(e.message.contains("Maximum call stack size exceeded"), "{e:?}"),
                other => panic!("expected a RangeError, got {other:?}"),
            }
            // How deep it got, counted by the same functions.
            c.eval("globalThis.max = 0; globalThis.step = (n) => { max = n; return down(n) }").unwrap();
            let _ = c.call("step", &[Value::Integer(0)]);
            let d = c.eval("max").unwrap().as_i64().unwrap();
            assert_eq!(c.eval("1 + 1").unwrap(), Value::Integer(2));
            d
        });
        assert!(d >= 100, "{} MiB thread: only {d} levels of JS → host → JS", stack >> 20);
    }
}

#[test]
fn calls_from_many_threads_on_many_contexts() {
    let contexts: Vec<Context> = (0..4).map(|_| ctx()).collect();
    for c in &contexts {
        c.eval("globalThis.n = 0").unwrap();
    }
    std::thread::scope(|s| {
        for t in 0..8 {
            let contexts = &contexts;
            s.spawn(move || {
                for i in 0..250 {
                    let c = &contexts[(t + i) % contexts.len()];
                    assert_eq!(c.call("(x) => (n++, x * 2)", &[Value::from(i)]).unwrap(), Value::from(i * 2));
                }
            });
        }
    });
    let total: i64 = contexts.iter().map(|c| c.eval("n").unwrap().as_i64().unwrap()).sum();
    assert_eq!(total, 2000);
}

#[test]
fn a_timeout_also_covers_waiting_for_another_threads_call() {
    let c = ctx();
    let busy = c.clone();
    let runner = std::thread::spawn(move || {
        busy.eval_with("while (true) {}", EvalOptions { timeout: Some(Duration::from_secs(3)), ..Default::default() })
    });
    // Wait until the other thread's call holds the context.
    std::thread::sleep(Duration::from_millis(200));
    let t = Instant::now();
    let r = c.eval_with("1", EvalOptions { timeout: Some(Duration::from_millis(100)), ..Default::default() });
    assert!(matches!(r, Err(Error::Timeout)), "{r:?}");
    assert!(t.elapsed() < Duration::from_secs(2), "waited {:?}", t.elapsed());
    assert!(matches!(runner.join().unwrap(), Err(Error::Timeout)));
    assert_eq!(c.eval("1").unwrap(), Value::Integer(1));
}

#[test]
fn terminations_racing_the_start_and_end_of_calls_never_leak_into_later_calls() {
    let c = ctx();
    let stop = Arc::new(AtomicBool::new(false));
    let storm = std::thread::spawn({
        let (c, stop) = (c.clone(), stop.clone());
        move || {
            let mut n = 0u64;
            while !stop.load(Ordering::SeqCst) {
                c.terminate();
                n += 1;
                if n.is_multiple_of(64) {
                    std::thread::yield_now();
                }
            }
        }
    });
    let (mut ok, mut stopped) = (0, 0);
    for i in 0..3000i64 {
        // Short calls with and without tiny timeouts, so terminations and
        // deadlines land before, during and after the JS.
        let timeout = if i % 3 == 0 { Some(Duration::from_micros((i % 50) as u64)) } else { None };
        match c.call_with("(x) => x + 1", &[Value::Integer(i)], EvalOptions { timeout, ..Default::default() }) {
            Ok(v) => {
                assert_eq!(v, Value::Integer(i + 1));
                ok += 1;
            }
            Err(Error::Terminated | Error::Timeout) => stopped += 1,
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    stop.store(true, Ordering::SeqCst);
    storm.join().unwrap();
    assert_eq!(ok + stopped, 3000);
    // Nothing left over: every later call runs to completion.
    for i in 0..500i64 {
        assert_eq!(c.call("(x) => x + 1", &[Value::Integer(i)]).unwrap(), Value::Integer(i + 1));
    }
}

#[test]
fn timeouts_on_many_contexts_at_once_each_stop_their_own_call() {
    let contexts: Vec<Context> = (0..6).map(|_| ctx()).collect();
    std::thread::scope(|s| {
        for (i, c) in contexts.iter().enumerate() {
            s.spawn(move || {
                let timeout = Duration::from_millis(50 + 30 * i as u64);
                let t = Instant::now();
                let r = c.eval_with("while (true) {}", EvalOptions { timeout: Some(timeout), ..Default::default() });
                assert!(matches!(r, Err(Error::Timeout)), "{r:?}");
                assert!(t.elapsed() >= timeout, "stopped after {:?}, before its {timeout:?}", t.elapsed());
                assert_eq!(c.eval("7").unwrap(), Value::Integer(7));
            });
        }
    });
}

#[test]
fn dispose_from_any_thread() {
    // Created on one thread, used on another, disposed on a third while the
    // second runs JS.
    let c = on_thread(2 << 20, ctx);
    let running = Arc::new(AtomicUsize::new(0));
    let user = std::thread::spawn({
        let (c, running) = (c.clone(), running.clone());
        move || {
            running.store(1, Ordering::SeqCst);
            c.eval_with("while (true) {}", EvalOptions { timeout: Some(Duration::from_secs(30)), ..Default::default() })
        }
    });
    while running.load(Ordering::SeqCst) == 0 {
        std::thread::yield_now();
    }
    std::thread::sleep(Duration::from_millis(50));
    let d = c.clone();
    on_thread(256 << 10, move || d.dispose());
    let r = user.join().unwrap();
    assert!(matches!(r, Err(Error::Disposed(_))), "{r:?}");
    assert!(matches!(c.eval("1"), Err(Error::Disposed(_))));

    // The last clone dropped on a thread that never used the context.
    let c = ctx();
    c.eval("globalThis.x = [1, 2, 3]").unwrap();
    let h = c.eval_with("x", EvalOptions { as_handle: true, ..Default::default() }).unwrap();
    on_thread(256 << 10, move || drop(c));
    // A handle outliving its context reports that, on any thread.
    let h = h.as_handle().unwrap().clone();
    let r = on_thread(1 << 20, move || h.get("length"));
    assert!(matches!(r, Err(Error::Disposed(_))), "{r:?}");
}

#[test]
fn a_context_made_inside_another_contexts_callback_works_and_can_be_dropped_there() {
    let outer = ctx();
    outer
        .expose("inner", |_, args| {
            let inner =
                Context::new(ContextOptions::default()).map_err(|e| polyracer::HostError::new(e.to_string()))?;
            let r = inner.call("(x) => x * 3", &args).map_err(|e| polyracer::HostError::new(e.to_string()));
            drop(inner);
            r
        })
        .unwrap();
    assert_eq!(outer.eval("inner(5) + inner(1)").unwrap(), Value::Integer(18));
    assert_eq!(outer.eval("1 + 1").unwrap(), Value::Integer(2));
}
