//! Sandbox memory seen from Python without a copy (`share_buffers=True`):
//! a `memoryview` whose exporter keeps the JS buffer's memory alive.

use polyracer::transfer::SharedBytes;
use pyo3::ffi;
use pyo3::prelude::*;
use std::os::raw::c_int;

/// The exporter behind a shared `memoryview`: the bytes of a sandbox
/// `ArrayBuffer` or view, writable, kept allocated while any view of them
/// (and so this object) is alive — after the JS buffer is garbage and the
/// context is disposed too.
#[pyclass(module = "polyracer._polyracer", frozen)]
pub(crate) struct SandboxMemory(SharedBytes);

#[pymethods]
impl SandboxMemory {
    /// # Safety
    /// Called by Python's buffer protocol with a `Py_buffer` to fill.
    unsafe fn __getbuffer__(slf: Bound<'_, Self>, view: *mut ffi::Py_buffer, flags: c_int) -> PyResult<()> {
        let bytes = &slf.get().0;
        // SAFETY: `view` is Python's; the memory is `len` writable bytes
        // alive as long as `slf`, which the filled view holds a reference to.
        let r = unsafe {
            ffi::PyBuffer_FillInfo(view, slf.as_ptr(), bytes.as_ptr().cast(), bytes.len() as isize, 0, flags)
        };
        if r == -1 {
            return Err(PyErr::fetch(slf.py()));
        }
        Ok(())
    }

    /// Nothing to release: the memory lives as long as this object.
    unsafe fn __releasebuffer__(&self, _view: *mut ffi::Py_buffer) {}

    fn __len__(&self) -> usize {
        self.0.len()
    }
}

/// A writable `memoryview` of `bytes`.
pub(crate) fn memoryview(py: Python<'_>, bytes: SharedBytes) -> PyResult<Py<PyAny>> {
    let owner = Bound::new(py, SandboxMemory(bytes))?;
    // SAFETY: the GIL is held; `owner` exports a buffer (above).
    let view = unsafe { ffi::PyMemoryView_FromObject(owner.as_ptr()) };
    if view.is_null() {
        return Err(PyErr::fetch(py));
    }
    // SAFETY: a new, owned reference.
    Ok(unsafe { Bound::from_owned_ptr(py, view) }.unbind())
}
