//! uniffi's code generator, built from the same uniffi version as the
//! library, so generated bindings always match it (bindings-swift/generate.sh).

fn main() {
    uniffi::uniffi_bindgen_main()
}
