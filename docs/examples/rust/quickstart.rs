//! The Rust quick start from docs/rust.md. Compiled and run by the core
//! test suite (`core/tests/core.rs`), so it stays true.

use std::time::Duration;

use polyracer::{Context, ContextOptions, Error, HostError, Value};

pub fn main() -> Result<(), Error> {
    // A context: one V8 isolate, with limits; calls run on this thread.
    let ctx = Context::new(ContextOptions {
        timeout: Some(Duration::from_secs(1)),
        memory_limit: Some(64 << 20),
        ..Default::default()
    })?;

    // Evaluate code; values come back as `polyracer::Value`.
    assert_eq!(ctx.eval("6 * 7")?, Value::Integer(42));

    // Call functions by global path or expression, with serde types.
    let total: f64 = ctx.call_as("(xs) => xs.reduce((a, b) => a + b, 0)", (vec![1.5, 2.5],))?;
    assert_eq!(total, 4.0);

    // Expose host functions; JS calls them on this thread.
    ctx.expose("shout", |_ctx, args| match args.first() {
        Some(Value::String(s)) => Ok(Value::String(s.to_uppercase())),
        _ => Err(HostError::new("shout needs a string").with_name("TypeError")),
    })?;
    assert_eq!(ctx.eval("shout('hi')")?, Value::from("HI"));

    // JS errors carry name, message and the JS stack.
    match ctx.eval("shout(1)") {
        Err(Error::Js(e)) => assert_eq!((e.name.as_str(), e.message.as_str()), ("TypeError", "shout needs a string")),
        other => panic!("unexpected {other:?}"),
    }

    // Promises and timers: wait for the result.
    let v = ctx.eval_await("new Promise((resolve) => setTimeout(() => resolve('later'), 10))")?;
    assert_eq!(v, Value::from("later"));

    // Runaway code is stopped; the context stays usable.
    assert!(matches!(ctx.eval("while (true) {}"), Err(Error::Timeout)));
    assert_eq!(ctx.eval("'still here'")?, Value::from("still here"));
    Ok(())
}
