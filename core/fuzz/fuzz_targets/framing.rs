//! Snapshot and code-cache bytes (`core/src/framing.rs`): the first input
//! byte picks a mode, the rest is data.
//!
//! - raw bytes to `Snapshot::load`, and a context from whatever loads;
//! - edits to a real snapshot: any change must be refused before V8 sees it;
//! - raw bytes as the code cache of `compile` and `eval_module_with`: the
//!   compile must succeed (falling back to no cache) and run the right code;
//! - edits to a real code cache: must be reported as rejected.
//!
//! The CRC in the framing is an integrity check, not authentication:
//! libFuzzer's comparison tracing re-seals a changed payload within minutes
//! (it did, and V8's deserializer aborted). Caches and snapshots are
//! trusted input (docs/cli.md), so raw bytes that carry a valid CRC but are
//! not this process's own cache or snapshot are not handed to V8 here; all
//! other bytes are, and must be refused or fall back cleanly.
//!
//! Seeds: run with `POLYRACER_FUZZ_SEEDS=<dir>` to write real framed
//! snapshot and cache inputs into `<dir>` (see README.md).
#![no_main]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use libfuzzer_sys::fuzz_target;
use polyracer::{CompileOptions, Context, ContextOptions, Error, ModuleOptions, Snapshot, Value};

const SNAPSHOT_SOURCE: &str = "globalThis.seeded = 40; function addTwo(x) { return x + 2; }";
const SCRIPT: &str = "(function () { let s = 0; for (let i = 0; i < 10; i++) s += i; return s; })()";
const SCRIPT_RESULT: i64 = 45;
const MODULE: &str = "export const answer = 6 * 7; export default function f() { return answer; }";

struct Real {
    ctx: Context,
    snapshot: Vec<u8>,
    cache: Vec<u8>,
    module_cache: Vec<u8>,
}

fn real() -> &'static Real {
    static REAL: OnceLock<Real> = OnceLock::new();
    REAL.get_or_init(|| {
        let snapshot = Snapshot::create(SNAPSHOT_SOURCE).expect("snapshot").dump();
        let ctx = Context::new(ContextOptions::default()).expect("context");
        let script =
            ctx.compile(SCRIPT, CompileOptions { produce_cache: true, ..Default::default() }).expect("compile");
        let cache = script.cached_data().expect("cache").to_vec();
        let module_cache = ctx
            .eval_module_with(
                MODULE,
                "seed.mjs",
                no_imports,
                ModuleOptions { produce_cache: true, ..Default::default() },
            )
            .expect("module")
            .cached_data
            .expect("module cache");
        // Kind confusion is refused outright.
        assert!(Snapshot::load(&cache).is_err(), "a code cache loaded as a snapshot");
        let s = ctx.compile(SCRIPT, CompileOptions { cached_data: Some(&snapshot), ..Default::default() }).unwrap();
        assert!(s.cache_rejected(), "a snapshot accepted as a code cache");
        if let Ok(dir) = std::env::var("POLYRACER_FUZZ_SEEDS") {
            let write = |name: &str, mode: u8, bytes: &[u8]| {
                let mut v = vec![mode];
                v.extend_from_slice(bytes);
                std::fs::write(format!("{dir}/{name}"), v).expect("write seed");
            };
            write("snapshot-raw", 0, &snapshot);
            write("snapshot-edit", 1, &[0, 0, 0, 40, 1]);
            write("cache-raw", 2, &cache);
            write("cache-edit", 3, &[0, 0, 0, 40, 1]);
            write("module-cache-raw", 4, &module_cache);
        }
        Real { ctx, snapshot, cache, module_cache }
    })
}

/// CRC-32 (IEEE), as the framing computes it, bit by bit.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// Bytes whose frame checksum matches their payload (header: CRC at
/// 32..36, payload from 36) but which are not `genuine`: a deliberately
/// re-sealed frame, out of scope (see above).
fn resealed(bytes: &[u8], genuine: &[u8]) -> bool {
    bytes.len() >= 36 && bytes != genuine && bytes[32..36] == crc32(&bytes[36..]).to_le_bytes()
}

fn no_imports(spec: &str, _referrer: &str) -> Result<String, polyracer::HostError> {
    Err(polyracer::HostError::new(format!("no module {spec}")))
}

/// Applies edits from `data` to a copy of `base`: groups of five bytes
/// (little-endian position, new byte); a trailing partial group truncates
/// to a position derived from it.
fn edit(base: &[u8], data: &[u8]) -> Vec<u8> {
    let mut out = base.to_vec();
    let mut chunks = data.chunks_exact(5);
    for c in &mut chunks {
        let pos = u32::from_le_bytes([c[0], c[1], c[2], c[3]]) as usize % (out.len().max(1));
        if let Some(b) = out.get_mut(pos) {
            *b = c[4];
        }
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut p = [0u8; 4];
        p[..rest.len()].copy_from_slice(rest);
        let keep = u32::from_le_bytes(p) as usize % (out.len() + 1);
        out.truncate(keep);
    }
    out
}

fn snapshot_context(bytes: &[u8]) {
    let Ok(snap) = Snapshot::load(bytes) else { return };
    if resealed(bytes, &real().snapshot) {
        return;
    }
    match Context::new(ContextOptions { snapshot: Some(snap), ..Default::default() }) {
        Ok(ctx) => {
            let _ = ctx.eval("typeof addTwo === 'function' ? addTwo(seeded) : 0");
        }
        Err(Error::InvalidArgument(_)) => {}
        Err(e) => panic!("context from a loaded snapshot: {e:?}"),
    }
}

fn run_cached(cached: &[u8], must_reject: bool) {
    let r = real();
    let script = r
        .ctx
        .compile(SCRIPT, CompileOptions { cached_data: Some(cached), ..Default::default() })
        .expect("compile with any cache bytes must fall back, not fail");
    if must_reject {
        assert!(script.cache_rejected(), "an edited code cache was accepted");
    }
    assert_eq!(script.run().expect("run"), Value::Integer(SCRIPT_RESULT));
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, data)) = data.split_first() else { return };
    let r = real();
    match mode % 5 {
        0 => snapshot_context(data),
        1 => {
            let edited = edit(&r.snapshot, data);
            if edited != r.snapshot {
                match Snapshot::load(&edited) {
                    Err(Error::InvalidArgument(_)) => {}
                    Err(e) => panic!("edited snapshot: wrong error {e:?}"),
                    Ok(_) => panic!("an edited snapshot was accepted"),
                }
            }
        }
        2 if resealed(data, &r.cache) => {}
        2 => run_cached(data, false),
        3 => {
            let edited = edit(&r.cache, data);
            run_cached(&edited, edited != r.cache);
        }
        _ => {
            let editing = data.first() == Some(&0);
            let bytes = if editing { edit(&r.module_cache, &data[1..]) } else { data.to_vec() };
            if !editing && resealed(&bytes, &r.module_cache) {
                return;
            }
            let ctx = module_context();
            let m = ctx
                .eval_module_with(
                    MODULE,
                    // A fresh name each time: a module name is its identity,
                    // and a second evaluation would reuse the first instance.
                    &format!("fz{}.mjs", COUNTER.fetch_add(1, Ordering::Relaxed)),
                    no_imports,
                    ModuleOptions { cached_data: Some(&bytes), ..Default::default() },
                )
                .expect("module with any cache bytes must fall back, not fail");
            if editing && bytes != r.module_cache {
                assert!(m.cache_rejected, "an edited module cache was accepted");
            }
            assert_eq!(m.namespace.get("answer"), Some(&Value::Integer(42)));
        }
    }
});

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Modules stay in their context for its lifetime, so the module mode uses
/// a context that is replaced every few hundred inputs to keep memory flat.
fn module_context() -> Context {
    static CTX: Mutex<Option<(Context, u32)>> = Mutex::new(None);
    let mut slot = CTX.lock().unwrap();
    if slot.as_ref().is_none_or(|(_, n)| *n >= 500) {
        *slot = Some((Context::new(ContextOptions::default()).expect("context"), 0));
    }
    let (ctx, n) = slot.as_mut().unwrap();
    *n += 1;
    ctx.clone()
}
