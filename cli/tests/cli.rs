//! Runs the `polyracer` binary as a user would. This test binary does not
//! link V8 itself; only the CLI does.

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// How long one CLI run may take: generous for a loaded 2-core machine,
/// short enough that a hung CLI fails its test (killed, with its output so
/// far) instead of hanging the suite.
const DEADLINE: Duration = Duration::from_secs(60);

fn polyracer(args: &[&str]) -> Output {
    let child = Command::new(env!("CARGO_BIN_EXE_polyracer"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    output_within(child, DEADLINE)
}

#[path = "../../core/tests/support/child.rs"]
mod child;
use child::output_within;

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn temp_file(name: &str, body: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("polyracer-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    p
}

#[test]
fn eval_prints_json_and_readable_forms() {
    let o = polyracer(&["eval", "({a: [1, 'two', null], b: 1.5})"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "{\"a\":[1,\"two\",null],\"b\":1.5}\n");
    let o = polyracer(&["eval", "[undefined, 10n, NaN, new Date(0), new Map([[1, 2]]), new Set(['x']), () => 1]"]);
    assert_eq!(stdout(&o), "[undefined,10n,NaN,Date(1970-01-01T00:00:00.000Z),Map {1 => 2},Set {\"x\"},[Function]]\n");
    // Promises are awaited.
    let o = polyracer(&["eval", "new Promise((r) => setTimeout(() => r('late'), 10))"]);
    assert_eq!(stdout(&o), "\"late\"\n");
}

#[test]
fn run_file_with_console() {
    let f = temp_file("hello.js", "console.log('hello', 42, {k: true});\nconsole.error('to stderr');\n");
    let o = polyracer(&["run", f.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "hello 42 {\"k\":true}\n");
    assert_eq!(stderr(&o), "to stderr\n");
    // Timers scheduled by the script run before exit.
    let f = temp_file("timers.js", "setTimeout(() => console.log('later'), 20); console.log('now');");
    let o = polyracer(&["run", f.to_str().unwrap()]);
    assert_eq!(stdout(&o), "now\nlater\n");
}

#[test]
fn exit_codes_distinguish_failures() {
    let f = temp_file("throws.js", "function boom() {\n  throw new TypeError('bad thing');\n}\nboom();\n");
    let o = polyracer(&["run", f.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("TypeError: bad thing"), "{err}");
    assert!(err.contains("throws.js:2:9"), "{err}");

    let o = polyracer(&["eval", "let = ;"]);
    assert_eq!(o.status.code(), Some(3));
    assert!(stderr(&o).contains("SyntaxError"));

    let o = polyracer(&["--timeout", "100", "eval", "while (true) {}"]);
    assert_eq!(o.status.code(), Some(4));
    assert!(stderr(&o).contains("timed out"));

    let o = polyracer(&["--memory-limit", "32M", "eval", "const a = []; while (true) a.push(new Array(1e5).fill(1))"]);
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    assert!(stderr(&o).contains("out of memory"));

    let o = polyracer(&["run", "/nonexistent/file.js"]);
    assert_eq!(o.status.code(), Some(2));
    let o = polyracer(&["--memory-limit", "12Q", "eval", "1"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("\"12Q\" is not a size like 64M"), "{}", stderr(&o));
    let o = polyracer(&["--memory-limit=-5M", "eval", "1"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("is not a size"), "{}", stderr(&o));
}

/// Sizes and durations users type: unaligned limits used to abort the
/// process (a V8 CHECK, SIGTRAP); out-of-range ones are usage errors with
/// the accepted range, the same message every binding gives.
#[test]
fn unaligned_limits_work_and_out_of_range_limits_are_usage_errors() {
    for size in ["100000000", "200000000", "123456789", "95.5M", "1.5G"] {
        let o = polyracer(&["--memory-limit", size, "eval", "'ok'"]);
        assert_eq!(o.status.code(), Some(0), "{size}: {}", stderr(&o));
        assert_eq!(stdout(&o), "\"ok\"\n");
    }
    for size in ["1000", "3M", "2T"] {
        let o = polyracer(&["--memory-limit", size, "eval", "1"]);
        assert_eq!(o.status.code(), Some(2), "{size}");
        assert!(
            stderr(&o).contains("memory limit must be a whole number of bytes from 4194304 (4 MiB)"),
            "{}",
            stderr(&o)
        );
    }
    for ms in ["1e20", "-1", "NaN", "inf"] {
        let o = polyracer(&[&format!("--timeout={ms}"), "eval", "1"]);
        assert_eq!(o.status.code(), Some(2), "{ms}");
        assert!(
            stderr(&o).contains("timeout must be a number of milliseconds from 0 to 31536000000"),
            "{}",
            stderr(&o)
        );
    }
    let o = polyracer(&["--timeout", "0.5", "eval", "for (;;) {}"]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    // Typed arrays count against the limit: the reproducer no
    // longer grows past it (it reached 2.3 GB RSS).
    let o = polyracer(&[
        "--memory-limit",
        "64M",
        "--timeout",
        "10000",
        "eval",
        "let a = []; for (let i = 0; i < 60; i++) a.push(new Uint8Array(64 * 1024 * 1024).fill(1)); a.length",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("RangeError: Array buffer allocation failed"), "{}", stderr(&o));
}

#[test]
fn v8_flags_and_single_threaded() {
    let o = polyracer(&["--v8-flags=--expose-gc", "eval", "typeof gc"]);
    assert_eq!(stdout(&o), "\"function\"\n", "{}", stderr(&o));
    let o = polyracer(&["--single-threaded", "eval", "[1, 2, 3].map((x) => x * 2)"]);
    assert_eq!(stdout(&o), "[2,4,6]\n", "{}", stderr(&o));
    let o = polyracer(&["--v8-flags=not-a-flag", "eval", "1"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn repl_reads_multi_line_input() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_polyracer"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(
            b"let a = 1 +\n2\na * 10\nfunction f() {\n  return a + 1\n}\nf()\nthrow new Error('oops')\n'after'\n",
        )
        .unwrap();
    let o = output_within(child, DEADLINE);
    assert!(o.status.success());
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().skip(1).collect();
    assert_eq!(lines, ["undefined", "30", "undefined", "4", "\"after\""], "{out}");
    assert!(stderr(&o).contains("Error: oops"));
}

#[test]
fn docs_demo_script() {
    let demo = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/examples/cli/demo.js");
    let o = polyracer(&["run", demo]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "first primes: 2 3 5 7 11 13 17 19 23 29\n\
         word counts: {\"the\":3,\"quick\":1,\"brown\":1,\"fox\":1,\"jumps\":1,\"over\":1,\"lazy\":1,\"dog\":1,\"end\":1}\n\
         timers work in polyracer\n"
    );
}

#[test]
fn modules_snapshots_and_code_cache() {
    let dir = std::env::temp_dir().join(format!("polyracer-cli-mod-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("lib")).unwrap();
    std::fs::write(dir.join("lib/math.mjs"), "export const add = (a, b) => a + b;\n").unwrap();
    std::fs::write(
        dir.join("main.mjs"),
        "import {add} from './lib/math.mjs';\nconst m = await import('./lib/math.mjs');\nconsole.log(add(2, 3), m.add(1, 1), import.meta.url.endsWith('main.mjs'));\n",
    )
    .unwrap();
    let o = polyracer(&["run", dir.join("main.mjs").to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "5 2 true\n");
    // --module for a .js file; a missing import is a JS error naming it.
    std::fs::write(dir.join("broken.js"), "import './nope.mjs';\n").unwrap();
    let o = polyracer(&["run", "--module", dir.join("broken.js").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("nope.mjs"), "{}", stderr(&o));

    // Snapshots: build, run from it, refuse one made with other flags.
    std::fs::write(dir.join("app.js"), "var greeting = 'hi'; function greet(n) { return `${greeting} ${n}` }").unwrap();
    let snap = dir.join("app.snap");
    let o = polyracer(&["snapshot", "build", dir.join("app.js").to_str().unwrap(), "-o", snap.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = polyracer(&["--snapshot", snap.to_str().unwrap(), "eval", "greet('you')"]);
    assert_eq!(stdout(&o), "\"hi you\"\n", "{}", stderr(&o));
    let o = polyracer(&["--v8-flags=--no-lazy", "--snapshot", snap.to_str().unwrap(), "eval", "1"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("different V8"), "{}", stderr(&o));
    std::fs::write(dir.join("junk.snap"), b"not a snapshot at all").unwrap();
    let o = polyracer(&["--snapshot", dir.join("junk.snap").to_str().unwrap(), "eval", "1"]);
    assert_eq!(o.status.code(), Some(2));

    // Code cache directory: the first run writes a cache, the second uses it.
    let cache = dir.join("cache");
    let script = dir.join("c.js");
    std::fs::write(&script, "console.log([1, 2, 3].reduce((a, b) => a + b))").unwrap();
    for _ in 0..2 {
        let o = polyracer(&["run", "--code-cache", cache.to_str().unwrap(), script.to_str().unwrap()]);
        assert_eq!(stdout(&o), "6\n", "{}", stderr(&o));
    }
    assert_eq!(std::fs::read_dir(&cache).unwrap().count(), 1);
    // A corrupted cache file is ignored, not fatal.
    let entry = std::fs::read_dir(&cache).unwrap().next().unwrap().unwrap().path();
    std::fs::write(&entry, b"garbage").unwrap();
    let o = polyracer(&["run", "--code-cache", cache.to_str().unwrap(), script.to_str().unwrap()]);
    assert_eq!(stdout(&o), "6\n", "{}", stderr(&o));
}

#[test]
fn invalid_utf8_source_is_a_usage_error() {
    let dir = std::env::temp_dir().join(format!("polyracer-cli-utf8-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("bad.js");
    std::fs::write(&f, b"console.log('\xff\xfe')").unwrap();
    let o = polyracer(&["run", f.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("UTF-8"), "{}", stderr(&o));
}
