//! Bytes handed to the host without a copy: a reference to the memory of a
//! sandbox `ArrayBuffer` (its V8 backing store), for sinks that opt in with
//! [`Sink::shares_bytes`](super::Sink::shares_bytes).
//!
//! Copying is the default because a copy is what every other value is:
//! independent of the sandbox. Shared bytes are for large binary data (an
//! image, a wasm memory, a 64 MB buffer), where the copy is the cost, and
//! for hosts whose users expect a live view (PyMiniRacer's `memoryview`).

use std::ptr::NonNull;

/// The bytes of an `ArrayBuffer`, `SharedArrayBuffer`, typed array or
/// `DataView` as they lie in the sandbox's memory.
///
/// **Lifetime.** The memory stays allocated while this value (or a clone)
/// lives, even after JS dropped the buffer and after the context was
/// disposed: it holds the buffer's backing store, which V8 frees when its
/// last holder goes.
///
/// **Sharing.** The memory is the sandbox's: JS writes to the buffer show
/// through, and writes through [`SharedBytes::as_ptr`] show in JS. Nothing
/// orders the two; a host that writes while JS runs on another thread
/// races as with any shared memory. Resizable buffers are never shared
/// (JS could shrink them under the host's view): core copies them.
#[derive(Clone)]
pub struct SharedBytes {
    /// Keeps the memory alive; never read through.
    _store: v8::SharedRef<v8::BackingStore>,
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the backing store's reference count is a `std::shared_ptr`'s
// (atomic), V8's allocator frees it from any thread, and `SharedBytes`
// only hands out the address; what the host does with the memory is the
// host's to order (see the type's documentation).
unsafe impl Send for SharedBytes {}
unsafe impl Sync for SharedBytes {}

impl SharedBytes {
    /// `len` bytes at `offset` into `store`, or `None` when the store may
    /// be resized by JS or the range lies outside it.
    pub(crate) fn new(store: v8::SharedRef<v8::BackingStore>, offset: usize, len: usize) -> Option<SharedBytes> {
        if store.is_resizable_by_user_javascript() {
            return None;
        }
        let end = offset.checked_add(len).filter(|&e| e <= store.byte_length())?;
        let ptr = match store.data() {
            // SAFETY: `offset..end` lies within the store's memory.
            Some(p) => unsafe { NonNull::new_unchecked((p.as_ptr() as *mut u8).add(offset)) },
            None if end == 0 => NonNull::dangling(),
            None => return None,
        };
        Some(SharedBytes { _store: store, ptr, len })
    }

    /// The first byte: `len()` bytes are readable and writable from here
    /// for as long as `self` lives.
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The bytes as a slice.
    ///
    /// # Safety
    /// Nothing (JS on another thread, another holder) may write to the
    /// memory while the slice is in use.
    pub unsafe fn as_slice(&self) -> &[u8] {
        // SAFETY: `len` bytes at `ptr`, alive while `self` is; no writes
        // meanwhile, by the caller's promise.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl std::fmt::Debug for SharedBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedBytes").field("len", &self.len).finish_non_exhaustive()
    }
}

/// The bytes of `v` (an `ArrayBuffer`, `SharedArrayBuffer` or a view) to
/// share, or `None` to copy them (a resizable buffer, a detached one).
pub(super) fn of<'s>(scope: &mut v8::PinScope<'s, '_>, v: v8::Local<'s, v8::Value>) -> Option<SharedBytes> {
    if v.is_array_buffer_view() {
        let view: v8::Local<v8::ArrayBufferView> = v.try_into().ok()?;
        // A small typed array may keep its bytes on V8's heap, where they
        // move; asking for its buffer moves them out, once, for good.
        let buffer = view.buffer(scope)?;
        if buffer.was_detached() {
            return None;
        }
        return SharedBytes::new(buffer.get_backing_store(), view.byte_offset(), view.byte_length());
    }
    if v.is_array_buffer() {
        let ab: v8::Local<v8::ArrayBuffer> = v.try_into().ok()?;
        if ab.was_detached() {
            return None;
        }
        return SharedBytes::new(ab.get_backing_store(), 0, ab.byte_length());
    }
    if v.is_shared_array_buffer() {
        let ab: v8::Local<v8::SharedArrayBuffer> = v.try_into().ok()?;
        return SharedBytes::new(ab.get_backing_store(), 0, ab.byte_length());
    }
    None
}
