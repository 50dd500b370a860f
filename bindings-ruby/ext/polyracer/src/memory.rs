//! Sandbox memory seen from Ruby without a copy (`share_buffers: true`):
//! an `IO::Buffer` over the JS buffer's memory, which Ruby has for exactly
//! this (a view of memory someone else owns), as Python has `memoryview`.
//!
//! A Ruby `String` cannot be such a view: it owns its bytes and frees them
//! with `free`. And a copy into a new String is bound by the kernel here:
//! Ruby turns transparent huge pages off for its process, so 64 MiB is
//! 16,384 page faults, each a zeroed page (2–3× a memcpy, however the copy
//! is done).
//!
//! **Lifetime.** The buffer is made `EXTERNAL` (Ruby never frees the
//! memory) and `LOCKED` (Ruby refuses `free`, `resize` and `transfer` on
//! it, and `locked {}` cannot unlock it), and holds a [`SandboxMemory`] in
//! a hidden instance variable: the memory stays allocated while the buffer
//! lives, after the context is disposed too. A slice of it names the
//! buffer as its source, so it keeps the buffer, and so the memory, alive.

use magnus::rb_sys::{protect, FromRawValue};
use magnus::value::ReprValue;
use magnus::{Class, Module};
use magnus::{DataTypeFunctions, Error, Ruby, TypedData, Value};
use polyracer::transfer::SharedBytes;

use crate::classes::ivar;

/// The owner of a shared buffer's memory (never seen by Ruby code: held
/// only by the `IO::Buffer` it backs).
#[derive(TypedData)]
#[magnus(class = "Polyracer::SandboxMemory", free_immediately, size)]
pub(crate) struct SandboxMemory {
    _memory: SharedBytes,
}

impl DataTypeFunctions for SandboxMemory {}

// Declared here rather than taken from rb-sys: its `rb_io_buffer_flags`
// is a Rust enum, which cannot hold two flags at once. A C enum is passed
// as an `int`.
extern "C" {
    fn rb_io_buffer_new(base: *mut std::ffi::c_void, size: usize, flags: std::ffi::c_uint) -> rb_sys::VALUE;
}

/// Ruby's `RB_IO_BUFFER_EXTERNAL` and `RB_IO_BUFFER_LOCKED` (the same in
/// every Ruby from 3.1).
const EXTERNAL: std::ffi::c_uint = 1;
const LOCKED: std::ffi::c_uint = 32;

/// A writable, locked `IO::Buffer` over `bytes`, keeping them alive.
pub(crate) fn io_buffer(ruby: &Ruby, bytes: SharedBytes) -> Result<Value, Error> {
    let (ptr, len) = (bytes.as_ptr(), bytes.len());
    // SAFETY: the GVL is held; `ptr` is `len` writable bytes that stay
    // allocated while the owner set below lives, and the buffer holds it.
    // `rb_io_buffer_new` may raise (no memory): `protect` catches it.
    let buffer = protect(|| unsafe { rb_io_buffer_new(ptr.cast(), len, EXTERNAL | LOCKED) })?;
    // SAFETY: a live object just made.
    let buffer = unsafe { Value::from_raw(buffer) };
    // A name without `@`: hidden from `instance_variables` and from Ruby code.
    ivar(buffer, c"__polyracer_memory", ruby.obj_wrap(SandboxMemory { _memory: bytes }).as_value());
    Ok(buffer)
}

/// `Polyracer::SandboxMemory`, which Ruby code cannot make.
pub(crate) fn define(ruby: &Ruby) -> Result<(), Error> {
    crate::classes::module(ruby).define_class("SandboxMemory", ruby.class_object())?.undef_default_alloc_func();
    Ok(())
}
