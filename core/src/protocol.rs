//! The operations a call can run (`Request`) and their results (`Out`).
//! Requests borrow the caller's data: they run on the calling thread.

use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::transfer::{Args, Sink};
use crate::value::Value;

/// Where a request's result goes: built through the caller's sink, or (with
/// none) returned as `Out::Value`.
pub(crate) struct SinkRef<'a>(pub(crate) &'a mut dyn Sink);

impl std::fmt::Debug for SinkRef<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SinkRef")
    }
}

/// What a call targets.
#[derive(Debug)]
pub(crate) enum CallTarget<'a> {
    Handle(u32),
    /// A dotted global path (`JSON.stringify`) or any expression that
    /// evaluates to a function.
    Source(&'a str),
}

#[derive(Debug)]
pub(crate) enum HandleOp<'a> {
    Get(Value),
    Set(Value, Value),
    Delete(Value),
    Keys,
    Length,
    Call { this: Option<Value>, args: Args<'a>, as_handle: bool },
    CallMethod { name: String, args: Args<'a> },
    Construct { args: Args<'a> },
    Await { defer: bool },
    Copy,
    ToJsString,
    PromiseState,
    PreviewEntries,
}

/// What a call does when its result is a promise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AwaitMode {
    /// Return the promise.
    No,
    /// Wait for it: a top-level call releases the context while it waits
    /// (`Out::Await`, waited on by the caller after unlocking); a call
    /// nested in a host callback turns the event loop in place.
    Block,
    /// Register the await and return (`Out::Await`): a future.
    Defer,
}

impl AwaitMode {
    pub(crate) fn blocking(await_promise: bool) -> AwaitMode {
        if await_promise {
            AwaitMode::Block
        } else {
            AwaitMode::No
        }
    }
}

#[derive(Debug)]
pub(crate) enum Request<'a> {
    Eval {
        source: &'a str,
        filename: Option<&'a str>,
        as_handle: bool,
        await_promise: AwaitMode,
        sink: Option<SinkRef<'a>>,
    },
    Call {
        target: CallTarget<'a>,
        args: Args<'a>,
        as_handle: bool,
        await_promise: AwaitMode,
        sink: Option<SinkRef<'a>>,
    },
    SetGlobal {
        name: String,
        /// Exactly one.
        value: Args<'a>,
    },
    Expose {
        name: String,
        fn_id: usize,
        is_async: bool,
    },
    Handle {
        id: u32,
        op: HandleOp<'a>,
        sink: Option<SinkRef<'a>>,
    },
    RunEventLoop,
    /// Due timers, async host completions and V8 tasks, then return.
    RunPending,
    HeapStats,
    LowMemoryNotification,
    /// Runs the microtask queue now (from a host callback: in the middle
    /// of the JS that called it).
    Microtasks,
    HeapSnapshot {
        path: PathBuf,
    },
    Compile {
        source: &'a str,
        filename: Option<&'a str>,
        cached_data: Option<&'a [u8]>,
        produce_cache: bool,
    },
    RunScript {
        id: u32,
        as_handle: bool,
        await_promise: AwaitMode,
        sink: Option<SinkRef<'a>>,
    },
    EvalModule {
        source: &'a str,
        filename: &'a str,
        cached_data: Option<&'a [u8]>,
        produce_cache: bool,
    },
}

/// Results of requests.
#[derive(Debug)]
pub(crate) enum Out {
    Value(Value),
    Stats(Box<crate::HeapStats>),
    Script(crate::script::ScriptInfo),
    Module(Box<crate::module::ModuleResult>),
    /// A pending promise the caller awaits after releasing the context.
    Await(std::sync::Arc<crate::runtime::AwaitSlot>),
    Unit,
}

impl std::fmt::Debug for crate::runtime::AwaitSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwaitSlot").field("id", &self.id).finish_non_exhaustive()
    }
}

impl Out {
    /// Delivers a result built for a sink: already built (`Unit`), kept
    /// (`Value`, replayed), or awaited now with the context released.
    pub(crate) fn into_sink(self, sink: &mut dyn Sink) -> Result<()> {
        let v = match self {
            Out::Unit => return Ok(()),
            Out::Value(v) => v,
            Out::Await(slot) => crate::asynchronous::JsFuture::from_slot(slot).wait()?,
            other => return Err(Error::Conversion(format!("unexpected reply {other:?}"))),
        };
        v.emit(sink).map_err(|_| Error::Conversion(crate::convert::HALTED.into()))
    }

    pub(crate) fn into_value(self) -> Result<Value> {
        match self {
            Out::Value(v) => Ok(v),
            Out::Unit => Ok(Value::Undefined),
            // Waits with the context released (see `AwaitMode::Block`).
            Out::Await(slot) => crate::asynchronous::JsFuture::from_slot(slot).wait(),
            other => Err(Error::Conversion(format!("unexpected reply {other:?}"))),
        }
    }
}
