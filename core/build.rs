//! Compiles `shim/locker.cc`: `v8::Locker` and `Isolate::SetStackLimit`,
//! which rusty_v8 does not bind, against the `v8` crate's own headers.

use std::path::PathBuf;

/// Must match the exact `v8` pin in the workspace manifest.
const V8_CRATE: &str = "v8-142.2.0";

fn v8_include_dir() -> PathBuf {
    if let Ok(p) = std::env::var("POLYRACER_V8_INCLUDE_DIR") {
        return PathBuf::from(p);
    }
    // The v8 crate declares no `links` key, so cargo passes no DEP_* path
    // to its headers; they are in its unpacked source, beside ours in the
    // registry (or in a vendor directory next to this crate).
    let mut roots = Vec::new();
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .or_else(|| std::env::var_os("USERPROFILE").map(|h| PathBuf::from(h).join(".cargo")));
    if let Some(home) = cargo_home {
        if let Ok(entries) = std::fs::read_dir(home.join("registry/src")) {
            roots.extend(entries.flatten().map(|e| e.path()));
        }
    }
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    if let Some(parent) = manifest.parent() {
        roots.push(parent.to_path_buf());
        roots.push(parent.join("vendor"));
    }
    for root in roots {
        let inc = root.join(V8_CRATE).join("v8/include");
        if inc.join("v8-locker.h").exists() {
            return inc;
        }
    }
    panic!("{V8_CRATE}/v8/include not found in the cargo registry; set POLYRACER_V8_INCLUDE_DIR to it");
}

fn main() {
    let inc = v8_include_dir();
    println!("cargo:rerun-if-changed=shim/locker.cc");
    println!("cargo:rerun-if-env-changed=POLYRACER_V8_INCLUDE_DIR");
    cc::Build::new()
        .cpp(true)
        // The prebuilt V8 archive carries its own libc++; the shim needs no
        // C++ runtime beyond it, so do not link the system's.
        .cpp_link_stdlib(None)
        .file("shim/locker.cc")
        .include(&inc)
        .std("c++20")
        .flag_if_supported("-fno-exceptions")
        .flag_if_supported("-fno-rtti")
        // V8's headers are not warning-clean under -Wextra.
        .warnings(false)
        .extra_warnings(false)
        .compile("polyracer_locker");
}
