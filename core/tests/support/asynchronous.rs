//! The async design (issue 13): awaits hold nothing while the promise is
//! pending, timers fire while the host is idle, work reaches the host's
//! own loop through a task scheduler, cancellation and disposal.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use polyracer::{Context, Error, EvalOptions, Value};

use super::{block_on, ctx};

fn opts() -> EvalOptions {
    EvalOptions::default()
}

#[test]
fn an_async_host_function_awaits_host_io_then_calls_into_its_context_twice() {
    let c = ctx();
    c.eval("globalThis.hits = 0").unwrap();
    c.expose_async("fetchLater", |ctx, args, completer| {
        let ctx = ctx.clone();
        let x = args[0].as_f64().unwrap_or(0.0);
        let owner = ctx.clone();
        // Host I/O on another thread; meanwhile the sandbox promise is
        // pending and nothing holds the context.
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            let a = owner.eval("++hits").unwrap();
            let b = owner.eval("++hits").unwrap();
            completer.resolve(Value::from(x * 10.0 + a.as_f64().unwrap() + b.as_f64().unwrap()));
        });
    })
    .unwrap();
    // Blocking await on this thread; the host thread's two calls run while
    // it waits.
    let v = c.eval_with("fetchLater(4)", EvalOptions { await_promise: true, ..opts() }).unwrap();
    assert_eq!(v, Value::from(43.0)); // 40 + 1 + 2
                                      // And through a future.
    let v = block_on(c.eval_async("(async () => (await fetchLater(1)) + hits)()", opts())).unwrap();
    assert_eq!(v, Value::from(10.0 + 3.0 + 4.0 + 4.0));
}

#[test]
fn a_pending_await_does_not_block_other_threads_calls() {
    let c = ctx();
    let waiter = {
        let c = c.clone();
        std::thread::spawn(move || {
            c.eval_with("new Promise((r) => { globalThis.release = r })", EvalOptions { await_promise: true, ..opts() })
        })
    };
    // Wait until the waiter's promise exists, then make calls on this
    // thread while it is pending: they run at once.
    let t = Instant::now();
    while c.eval("typeof release").unwrap() != Value::from("function") {
        assert!(t.elapsed() < Duration::from_secs(5));
        std::thread::sleep(Duration::from_millis(1));
    }
    for i in 0..50 {
        assert_eq!(c.eval(&format!("{i} + 1")).unwrap(), Value::from(i + 1));
    }
    c.eval("release('released')").unwrap();
    assert_eq!(waiter.join().unwrap().unwrap(), Value::from("released"));
}

#[test]
fn a_hundred_concurrent_awaits_on_one_context() {
    let c = ctx();
    let before = thread_count();
    let futs: Vec<_> = (0..100)
        .map(|i| c.eval_async(&format!("new Promise((r) => setTimeout(() => r({i}), {}))", 100 - i), opts()))
        .collect();
    // No thread per await (the process-wide driver may start once).
    assert!(thread_count() <= before + 1, "{} threads before, {} after", before, thread_count());
    let got: Vec<Value> = futs.into_iter().map(|f| block_on(f).unwrap()).collect();
    assert_eq!(got, (0..100).map(Value::from).collect::<Vec<_>>());
    // And from 100 host threads blocked on the same context at once.
    let threads: Vec<_> = (0..100)
        .map(|i| {
            let c = c.clone();
            std::thread::spawn(move || {
                c.eval_with(
                    &format!("new Promise((r) => setTimeout(() => r({i}), 20))"),
                    EvalOptions { await_promise: true, ..opts() },
                )
            })
        })
        .collect();
    for (i, t) in threads.into_iter().enumerate() {
        assert_eq!(t.join().unwrap().unwrap(), Value::from(i as i64));
    }
}

fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task").map(|d| d.count()).unwrap_or(0)
}

#[test]
fn a_timer_fires_while_the_host_is_idle() {
    let c = ctx();
    let (tx, rx) = mpsc::channel::<String>();
    let tx = Mutex::new(tx);
    c.expose("report", move |_, args| {
        let name = std::thread::current().name().unwrap_or("").to_string();
        let _ = tx.lock().unwrap().send(format!("{}@{name}", args[0].as_str().unwrap_or("")));
        Ok(Value::Undefined)
    })
    .unwrap();
    c.eval("setTimeout(() => report('tick'), 30)").unwrap();
    // No call, no await: the driver runs it.
    let got = rx.recv_timeout(Duration::from_secs(5)).expect("the timer fired");
    assert_eq!(got, "tick@polyracer-driver");
}

#[test]
fn due_work_reaches_the_hosts_own_loop_through_the_task_scheduler() {
    let c = ctx();
    // The "host loop": a thread that runs what the scheduler queues.
    let (jobs_tx, jobs_rx) = mpsc::channel::<Context>();
    let scheduled = Arc::new(AtomicUsize::new(0));
    {
        let c2 = Arc::new(Mutex::new(jobs_tx));
        let weak = c.clone();
        let scheduled = scheduled.clone();
        c.set_task_scheduler(Some(Arc::new(move || {
            scheduled.fetch_add(1, Ordering::SeqCst);
            c2.lock().unwrap().send(weak.clone()).is_ok()
        })));
    }
    let host_loop = std::thread::Builder::new()
        .name("host-loop".into())
        .spawn(move || {
            while let Ok(ctx) = jobs_rx.recv_timeout(Duration::from_secs(2)) {
                ctx.run_pending_tasks().unwrap();
            }
        })
        .unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    let tx = Mutex::new(tx);
    c.expose("report", move |_, _| {
        let _ = tx.lock().unwrap().send(std::thread::current().name().unwrap_or("").to_string());
        Ok(Value::Undefined)
    })
    .unwrap();
    c.eval("setTimeout(() => report(), 20)").unwrap();
    assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap(), "host-loop");
    assert!(scheduled.load(Ordering::SeqCst) >= 1);
    // A future settles through the same loop.
    let f = c.eval_async("new Promise((r) => setTimeout(() => { report(); r(7) }, 10))", opts());
    assert_eq!(block_on(f).unwrap(), Value::from(7));
    assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap(), "host-loop");
    c.set_task_scheduler(None);
    drop(c);
    host_loop.join().unwrap();
}

#[test]
fn cancelling_an_await_leaves_the_context_usable() {
    let c = ctx();
    let f = c.eval_async("new Promise((r) => { globalThis.resolveLater = r })", opts());
    assert!(!f.is_ready());
    f.cancel();
    // Settling the abandoned promise later is harmless.
    c.eval("resolveLater(1)").unwrap();
    assert_eq!(c.eval("1 + 1").unwrap(), Value::from(2));
    // Timed-out futures are withdrawn too.
    let slow = c.eval_async(
        "new Promise((r) => setTimeout(r, 10000))",
        EvalOptions { timeout: Some(Duration::from_millis(30)), ..opts() },
    );
    assert!(matches!(block_on(slow), Err(Error::Timeout)));
    let v = block_on(c.eval_async("Promise.resolve(5)", opts())).unwrap();
    assert_eq!(v, Value::from(5));
    // terminate() rejects pending awaits.
    let pending = c.eval_async("new Promise(() => {})", opts());
    c.terminate();
    assert!(matches!(block_on(pending), Err(Error::Terminated)));
    assert_eq!(c.eval("2 + 2").unwrap(), Value::from(4));
}

#[test]
fn disposing_rejects_pending_awaits_with_disposed() {
    let c = ctx();
    let f = c.eval_async("new Promise((r) => setTimeout(r, 10000))", opts());
    let blocked = {
        let c = c.clone();
        std::thread::spawn(move || {
            c.eval_with("new Promise((r) => setTimeout(r, 10000))", EvalOptions { await_promise: true, ..opts() })
        })
    };
    std::thread::sleep(Duration::from_millis(50));
    let t = Instant::now();
    c.dispose();
    assert!(matches!(block_on(f), Err(Error::Disposed(_))));
    assert!(matches!(blocked.join().unwrap(), Err(Error::Disposed(_))));
    assert!(t.elapsed() < Duration::from_secs(5));
}

#[test]
fn an_await_that_nothing_can_settle_reports_it() {
    let c = ctx();
    let t = Instant::now();
    match c.eval_with("new Promise(() => {})", EvalOptions { await_promise: true, ..opts() }) {
        Err(Error::Js(e)) => assert!(e.message.contains("can never settle"), "{}", e.message),
        other => panic!("{other:?}"),
    }
    assert!(t.elapsed() < Duration::from_secs(5));
}

#[test]
fn an_async_host_rejection_carries_the_stack_of_its_js_call_site() {
    let c = ctx();
    c.expose_async("failLater", |_ctx, _args, completer| {
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(5));
            completer.reject(polyracer::HostError::new("disk full").with_name("RangeError"));
        });
    })
    .unwrap();
    let src = "function load() {\n  return failLater()\n}\nload().catch((e) => [e instanceof RangeError, e.stack])";
    let v = c.eval_with(src, EvalOptions { filename: Some("app.js".into()), await_promise: true, ..opts() }).unwrap();
    let Value::Array(items) = v else { panic!("{v:?}") };
    assert_eq!(items[0], Value::Bool(true));
    let stack = items[1].as_str().unwrap().to_string();
    assert!(stack.starts_with("RangeError: disk full\n    at load (app.js:2:10)"), "{stack}");
    assert!(stack.contains("at app.js:4:1"), "{stack}");
    // Uncaught, the error says where JS called too.
    let r =
        c.eval_with("\n\nfailLater()", EvalOptions { filename: Some("b.js".into()), await_promise: true, ..opts() });
    let e = r.unwrap_err();
    let ex = e.exception().unwrap();
    assert!(ex.stack.contains("b.js:3:1"), "{}", ex.stack);
}

#[test]
fn v8_tasks_run_between_plain_calls() {
    // A WebAssembly compile finishes on a worker thread and settles its
    // promise through a V8 foreground task: a caller that polls with plain
    // calls (no await) must see it settle.
    let c = ctx();
    let wasm = "new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0])";
    c.eval(&format!(
        "globalThis.res = null; WebAssembly.instantiate({wasm}).then(() => {{ res = 'ok' }}, (e) => {{ res = String(e) }})"
    ))
    .unwrap();
    let t = Instant::now();
    while c.eval("res").unwrap() == Value::Null {
        assert!(t.elapsed() < Duration::from_secs(10), "the compile never settled");
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(c.eval("res").unwrap(), Value::from("ok"));
}
