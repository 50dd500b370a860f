//! Context options and engine flags: arbitrary `ContextOptions` (memory
//! limits from tiny to near the address space, unaligned sizes, timeouts
//! from zero to `Duration::MAX`) and per-call timeouts, then small code that
//! finishes, loops, fills the heap or allocates `ArrayBuffer`s. Every value
//! must give a working context whose limits hold or `InvalidArgument`; no
//! value may abort the process or panic.
//!
//! The core's validators for what bindings pass (`polyracer::limits`:
//! timeouts as numbers in seconds or milliseconds, memory limits as
//! integers or floats, byte sizes like `1.5G`) get arbitrary input on every
//! iteration: they must return a value in the documented range or
//! `InvalidArgument`, and never panic.
//!
//! Engine flags are frozen once V8 starts, and the first context starts it,
//! so flags can only be fuzzed through `configure` after start-up, where
//! every call must be refused with `InvalidArgument` naming the flags. The
//! core's shape check (`validate_flags`) runs only before start-up and is
//! private; it is covered by the regression tests instead.
#![no_main]

use std::time::{Duration, Instant};

use arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use polyracer::limits::{self, TimeUnit, MAX_MEMORY_LIMIT, MAX_TIMEOUT, MEMORY_LIMIT_GRANULARITY, MIN_MEMORY_LIMIT};
use polyracer::{Context, ContextOptions, EngineOptions, Error, EvalOptions, Value};

const LIMITS: &[usize] = &[
    0,
    1,
    4096,
    (1 << 20) - 1,
    1 << 20,
    (1 << 20) + 1,
    10_000_000,
    16 << 20,
    64 << 20,
    100_000_000,
    134_217_728,
    200_000_000,
    (1 << 31) - 1,
    1 << 32,
    (1 << 32) + 1,
    1 << 40,
    1 << 47,
    (1 << 63) - 1,
    usize::MAX - 4095,
    usize::MAX,
];

fn limit(u: &mut Unstructured) -> Result<Option<usize>> {
    Ok(match u.int_in_range(0u8..=3)? {
        0 => None,
        1 => Some(u.arbitrary()?),
        // Small, mostly unaligned sizes where a context is cheap to fill.
        2 => Some(u.int_in_range(0usize..=(512 << 20))?),
        _ => Some(*u.choose(LIMITS)?),
    })
}

fn duration(u: &mut Unstructured) -> Result<Option<Duration>> {
    Ok(match u.int_in_range(0u8..=4)? {
        0 => None,
        1 => Some(Duration::new(u.arbitrary()?, u.int_in_range(0u32..=999_999_999)?)),
        2 => Some(Duration::from_nanos(u.int_in_range(0u64..=300_000_000)?)),
        3 => Some(Duration::MAX),
        _ => Some(*u.choose(&[
            Duration::ZERO,
            Duration::from_nanos(1),
            Duration::from_millis(1),
            Duration::from_secs(u64::MAX / 2),
            Duration::from_secs(1 << 40),
        ])?),
    })
}

/// Short enough that a loop waiting for it keeps the fuzzer moving.
const SHORT: Duration = Duration::from_millis(300);

/// What the code may end with; anything else is a finding.
#[derive(Clone, Copy, Debug)]
enum Code {
    Finishes,
    Loops,
    FillsHeap,
    FillsBuffers,
}

const CODES: &[(Code, &str)] = &[
    (Code::Finishes, "[1, 2, 3].map((x) => x * 2).length"),
    (Code::Loops, "for (;;) {}"),
    // In functions, so what they hold is garbage once they end and the
    // context can run again.
    (Code::FillsHeap, "(() => { const a = []; for (;;) a.push(new Array(100000).fill(1.5)); })()"),
    // Bounded at 512 MiB so a limit that does not cover buffers cannot take
    // the machine with it; `fill` makes the pages resident.
    (
        Code::FillsBuffers,
        "(() => { const b = []; for (let i = 0; i < 16; i++) b.push(new Uint8Array(32 * 1024 * 1024).fill(1)); return b.length; })()",
    ),
];

const NUMBERS: &[f64] = &[
    f64::NAN,
    f64::INFINITY,
    f64::NEG_INFINITY,
    -0.0,
    0.0,
    -1.0,
    5e-324,
    0.5,
    1e20,
    1e30,
    1e31,
    4194303.0,
    4194304.0,
    100_000_000.0,
    1099511627776.0,
    1099511627777.0,
    31_536_000.0,
    31_536_000.000_001,
    31_536_000_000.0,
    31_536_000_001.0,
    9007199254740993.0,
];

/// The validators on their own.
fn validators(u: &mut Unstructured) -> Result<()> {
    let x = if u.arbitrary()? { *u.choose(NUMBERS)? } else { f64::from_bits(u.arbitrary()?) };
    for unit in [TimeUnit::Seconds, TimeUnit::Milliseconds] {
        match limits::timeout(x, unit) {
            Ok(d) => {
                assert!(x >= 0.0 && d <= MAX_TIMEOUT, "timeout({x}, {unit:?}) = {d:?}");
                assert_eq!(limits::check_timeout(d).ok(), Some(d));
            }
            Err(Error::InvalidArgument(m)) => assert!(m.contains("timeout"), "{m}"),
            Err(e) => panic!("timeout({x}): {e:?}"),
        }
    }
    let check_limit = |what: &str, r: polyracer::Result<usize>| match r {
        Ok(l) => assert!(
            (MIN_MEMORY_LIMIT..=MAX_MEMORY_LIMIT).contains(&(l as u64))
                && (l as u64).is_multiple_of(MEMORY_LIMIT_GRANULARITY),
            "{what} = {l}"
        ),
        Err(Error::InvalidArgument(m)) => assert!(m.contains("memory limit"), "{what}: {m}"),
        Err(e) => panic!("{what}: {e:?}"),
    };
    check_limit(&format!("memory_limit_f64({x})"), limits::memory_limit_f64(x));
    let i: i128 = u.arbitrary()?;
    check_limit(&format!("memory_limit({i})"), limits::memory_limit(i));
    let text: String = if u.arbitrary()? {
        let n: u64 = u.arbitrary()?;
        let suffix = *u.choose(&["", "B", "k", "K", "M", "m", "G", "T", "P", " M", "MB", "Mi"])?;
        let frac = if u.arbitrary()? { ".5" } else { "" };
        format!("{n}{frac}{suffix}")
    } else {
        u.arbitrary()?
    };
    match limits::parse_byte_size(&text) {
        // Whatever parses is a size the range check then judges.
        Ok(n) => {
            assert!(n >= 0, "parse_byte_size({text:?}) = {n}");
            check_limit(&format!("memory_limit(parse_byte_size({text:?}))"), limits::memory_limit(n));
        }
        Err(Error::InvalidArgument(_)) => {}
        Err(e) => panic!("parse_byte_size({text:?}): {e:?}"),
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let _ = validators(&mut u);
    let (Ok(memory_limit), Ok(timeout), Ok(call_timeout), Ok(&(code, src))) =
        (limit(&mut u), duration(&mut u), duration(&mut u), u.choose(CODES))
    else {
        return;
    };
    if std::env::var_os("POLYRACER_FUZZ_VERBOSE").is_some() {
        // For reading a crash input: `POLYRACER_FUZZ_VERBOSE=1 cargo fuzz run options FILE`.
        eprintln!("memory_limit {memory_limit:?}, timeout {timeout:?}, call_timeout {call_timeout:?}, code {code:?}");
    }
    let flags: Vec<String> =
        (0..u.int_in_range(0u8..=3).unwrap_or(0)).filter_map(|_| u.arbitrary::<String>().ok()).collect();

    // The documented range: limits::memory_limit and MAX_TIMEOUT.
    let valid = memory_limit.is_none_or(|l| (MIN_MEMORY_LIMIT..=MAX_MEMORY_LIMIT).contains(&(l as u64)))
        && timeout.is_none_or(|t| t <= MAX_TIMEOUT);
    let ctx = match Context::new(ContextOptions { timeout, memory_limit, snapshot: None }) {
        Ok(ctx) => {
            assert!(valid, "Context::new accepted memory_limit {memory_limit:?}, timeout {timeout:?}");
            ctx
        }
        Err(Error::InvalidArgument(m)) => {
            assert!(!valid, "Context::new refused memory_limit {memory_limit:?}, timeout {timeout:?}: {m}");
            return;
        }
        Err(e) => panic!("Context::new({memory_limit:?}, {timeout:?}): {e:?}"),
    };
    // A per-call timeout beyond the maximum is refused before anything runs.
    if let Some(t) = call_timeout.filter(|t| *t > MAX_TIMEOUT) {
        let r = ctx.eval_with("for (;;) {}", EvalOptions { timeout: Some(t), ..Default::default() });
        assert!(matches!(r, Err(Error::InvalidArgument(_))), "call timeout {t:?}: {r:?}");
    }

    // The engine has started: flags must be refused, naming each one.
    match polyracer::configure(EngineOptions { flags: flags.clone(), single_threaded: false }) {
        Err(Error::InvalidArgument(m)) => {
            for f in &flags {
                assert!(m.contains(f.as_str()), "refusal {m:?} does not name {f:?}");
            }
        }
        other => panic!("configure after start-up: {other:?}"),
    }

    // The timeout in force; the loop and fill cases only run when one short
    // enough to end them is set (a heap fill with no memory limit would
    // reach V8's own fatal out-of-memory, which ends any process).
    let call_timeout = call_timeout.filter(|t| *t <= MAX_TIMEOUT);
    let effective = call_timeout.or(timeout);
    let bounded = effective.is_some_and(|t| t <= SHORT);
    let limited = memory_limit.is_some_and(|l| l <= 1 << 30);
    let runnable = match code {
        Code::Finishes => true,
        Code::Loops => bounded,
        Code::FillsHeap | Code::FillsBuffers => limited || bounded,
    };
    if !runnable {
        return;
    }
    // A call-level timeout only when it is itself bounded, so a fill with a
    // memory limit but no short timeout ends by the limit.
    let options = EvalOptions { timeout: call_timeout.filter(|t| *t <= SHORT), ..Default::default() };
    let start = Instant::now();
    let r = ctx.eval_with(src, options);
    let took = start.elapsed();
    match (code, &r) {
        (Code::Finishes, Ok(Value::Integer(3))) => {}
        // A short timeout may fire before the code finishes: on this loaded
        // machine, at nice 19, a thread can wait that long for a core.
        (Code::Finishes, Err(Error::Timeout)) if effective.is_some_and(|t| t <= Duration::from_secs(1)) => {}
        (Code::Loops, Err(Error::Timeout)) => {}
        (Code::FillsHeap, Err(Error::OutOfMemory | Error::Timeout)) => {}
        // Buffers past the limit fail inside JS with a RangeError, or the
        // context ends over its limit; 512 MiB fit under large limits.
        (Code::FillsBuffers, Ok(Value::Integer(16))) if memory_limit.is_none_or(|l| l > 512 << 20) => {}
        (Code::FillsBuffers, Err(Error::OutOfMemory | Error::Timeout)) => {}
        (Code::FillsBuffers, Err(Error::Js(e))) if e.name == "RangeError" => {}
        _ => panic!("{code:?} with memory_limit {memory_limit:?}, timeout {timeout:?}, call {call_timeout:?}: {r:?}"),
    }
    // Limits hold: a run bounded by a timeout ends near it.
    if let (Some(t), Err(Error::Timeout)) = (effective, &r) {
        assert!(took < t + Duration::from_secs(5), "timeout {t:?} took {took:?}");
    }
    // The context survives its limits.
    assert_eq!(
        ctx.eval_with("1 + 1", EvalOptions { timeout: Some(Duration::from_secs(5)), ..Default::default() }).ok(),
        Some(Value::Integer(2))
    );
    let _ = ctx.heap_stats();
});
