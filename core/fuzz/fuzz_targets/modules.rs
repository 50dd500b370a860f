//! ES module specifiers and resolution (`core/src/module.rs`): a fresh
//! context evaluates a root module whose imports go through a resolver that
//! serves a fuzz-built module graph (static and dynamic imports, re-exports,
//! cycles, top-level await, throws, syntax garbage, resolver errors and
//! odd specifiers). `resolve_specifier` is also checked on its own.
#![no_main]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use polyracer::{resolve_specifier, Context, ContextOptions, Error, HostError, ModuleOptions};

const SPECIFIERS: &[&str] = &[
    "./a.js",
    "./b.js",
    "../a.js",
    "../../../../a.js",
    "./dir/../b.js",
    "./././c.js",
    "/a.js",
    "/dir/c.js",
    "a",
    "",
    ".",
    "..",
    "./",
    "../",
    "/",
    "//evil/a.js",
    "http://host/a.js",
    "http://host",
    "http://host/../../a.js",
    "file:///a.js",
    "node:fs",
    "./a.js?x=1#h",
    "./\u{0}.js",
    "./é/ü.js",
    "./%2e%2e/a.js",
];

const ROOTS: &[&str] = &["/app/main.mjs", "main.mjs", "http://host/dir/main.mjs", "", "/", "a://", "x://y/../z"];

fn specifier(u: &mut Unstructured) -> Result<String> {
    Ok(if u.ratio(3, 4)? {
        (*u.choose(SPECIFIERS)?).to_owned()
    } else {
        u.arbitrary::<String>()?.chars().take(40).collect()
    })
}

/// A JS string literal for `s` (escaping quotes, backslashes and controls).
fn lit(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c == '\u{2028}' || c == '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn module_source(u: &mut Unstructured) -> Result<String> {
    let mut src = String::new();
    let n = u.int_in_range(0u8..=5)?;
    for i in 0..n {
        let s = lit(&specifier(u)?);
        let stmt = match u.int_in_range(0u8..=12)? {
            0 => format!("import * as m{i} from {s};\n"),
            1 => format!("import {{ x as x{i} }} from {s};\n"),
            2 => format!("import d{i} from {s};\n"),
            3 => format!("export * from {s};\n"),
            4 => format!("export {{ x as y{i} }} from {s};\n"),
            5 => format!("const dyn{i} = await import({s});\n"),
            6 => format!("import({s}).then(() => {{}}, () => {{}});\n"),
            7 => format!("export const x = {i};\n"),
            8 => format!("export default {i};\n"),
            9 => "export const url = import.meta.url;\n".to_owned(),
            10 => "await new Promise((r) => setTimeout(r, 0));\n".to_owned(),
            11 => "throw new Error('boom');\n".to_owned(),
            _ => u.arbitrary::<String>()?.chars().take(40).collect(),
        };
        src.push_str(&stmt);
    }
    Ok(src)
}

/// What the resolver does for one resolved name.
#[derive(Clone)]
enum Answer {
    Source(String),
    Fail(String),
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(root_name) = u.choose(ROOTS).map(|s| (*s).to_owned()) else { return };
    let Ok(root) = module_source(&mut u) else { return };
    // The graph: resolved name -> answer. Names not in it fail.
    let mut graph: HashMap<String, Answer> = HashMap::new();
    let n = u.int_in_range(0u8..=6).unwrap_or(0);
    for _ in 0..n {
        let (Ok(spec), Ok(referrer)) = (specifier(&mut u), u.choose(ROOTS)) else { break };
        let name = resolve_specifier(&spec, referrer);
        let answer = if u.ratio(1, 8).unwrap_or(false) {
            Answer::Fail(format!("refused {name}"))
        } else {
            Answer::Source(module_source(&mut u).unwrap_or_default())
        };
        graph.insert(name, answer);
    }

    // resolve_specifier on its own: never panics, and a relative or
    // absolute specifier under a plain absolute path folds every `.`/`..`.
    for (spec, referrer) in
        [(root.as_str(), root_name.as_str())].into_iter().chain(SPECIFIERS.iter().map(|s| (*s, "/app/x.mjs")))
    {
        let r = resolve_specifier(spec, referrer);
        if referrer.starts_with('/') && (spec.starts_with("./") || spec.starts_with("../") || spec.starts_with('/')) {
            assert!(r.starts_with('/'), "{spec:?} from {referrer:?} -> {r:?}");
            assert!(!r.split('/').any(|seg| seg == "." || seg == ".."), "{spec:?} from {referrer:?} -> {r:?}");
        }
    }

    let graph = Arc::new(graph);
    let resolver = move |spec: &str, referrer: &str| -> std::result::Result<String, HostError> {
        match graph.get(&resolve_specifier(spec, referrer)) {
            Some(Answer::Source(s)) => Ok(s.clone()),
            Some(Answer::Fail(m)) => Err(HostError::new(m.clone())),
            None => Err(HostError::new(format!("no module {spec:?} from {referrer:?}"))),
        }
    };
    let ctx = Context::new(ContextOptions::default()).expect("context");
    // The bound keeps a top-level await that never settles from stalling
    // the fuzzer; it is long enough that it never fires on real work.
    let options = ModuleOptions { timeout: Some(Duration::from_millis(500)), ..Default::default() };
    match ctx.eval_module_with(&root, &root_name, resolver, options) {
        Ok(m) => {
            // The namespace copy and the handle agree on the export names.
            if let (polyracer::Value::Object(props), Ok(keys)) = (&m.namespace, m.handle.keys()) {
                let mut a: Vec<&str> = props.iter().map(|(k, _)| k.as_str()).collect();
                let mut b: Vec<&str> = keys.iter().map(String::as_str).collect();
                a.sort_unstable();
                b.sort_unstable();
                assert_eq!(a, b, "namespace copy and handle disagree");
            }
        }
        Err(Error::Js(_) | Error::Parse(_)) => {}
        // A live binding read before its module ran (cycles) throws while
        // the namespace is copied.
        Err(Error::Conversion(m)) if m.contains("threw") => {}
        Err(Error::Timeout) => {}
        Err(e) => panic!("eval_module: unexpected {e:?}\nroot {root_name:?}:\n{root}"),
    }
    // The context is still usable afterwards.
    assert_eq!(ctx.eval("1 + 1").expect("eval after module"), polyracer::Value::Integer(2));
});
