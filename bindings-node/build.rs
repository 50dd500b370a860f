//! napi-rs setup, plus symbol hygiene for Linux: Node carries its own V8, so
//! the addon must not export (or let Node interpose) any symbol of the V8 it
//! embeds. rustc's version script already hides V8's C++ symbols; the C-ABI
//! shims that the `v8` and `temporal_capi` crates declare `#[no_mangle]`
//! would still be exported, so they are listed as local here
//! (`hidden-symbols.txt`, checked by the test suite with `nm -D`), and
//! `-Bsymbolic` binds every remaining reference inside the addon to the
//! addon's own definitions.

use std::fmt::Write;

fn main() {
    napi_build::setup();
    println!("cargo:rerun-if-changed=hidden-symbols.txt");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("linux") {
        return;
    }
    let list = std::fs::read_to_string("hidden-symbols.txt").expect("hidden-symbols.txt");
    let mut script = String::from("{\n  local:\n");
    for name in list.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        writeln!(script, "    {name};").unwrap();
    }
    script.push_str("};\n");
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("hidden.map");
    std::fs::write(&out, script).expect("write hidden.map");
    println!("cargo:rustc-cdylib-link-arg=-Wl,--version-script={}", out.display());
    // Names another target or V8 build lacks are fine (newer lld refuses them by default).
    println!("cargo:rustc-cdylib-link-arg=-Wl,--undefined-version");
    println!("cargo:rustc-cdylib-link-arg=-Wl,-Bsymbolic");
}
