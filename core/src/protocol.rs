//! The operations a call can run (`Request`) and their results (`Out`).
//! Requests borrow the caller's data: they run on the calling thread.

use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::value::Value;

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
    Call { this: Option<Value>, args: &'a [Value], as_handle: bool },
    CallMethod { name: String, args: &'a [Value] },
    Construct { args: &'a [Value] },
    Await,
    Copy,
    ToJsString,
    PromiseState,
}

#[derive(Debug)]
pub(crate) enum Request<'a> {
    Eval { source: &'a str, filename: Option<&'a str>, as_handle: bool, await_promise: bool },
    Call { target: CallTarget<'a>, args: &'a [Value], as_handle: bool, await_promise: bool },
    SetGlobal { name: String, value: Value },
    Expose { name: String, fn_id: usize, is_async: bool },
    Handle { id: u32, op: HandleOp<'a> },
    RunEventLoop,
    HeapStats,
    LowMemoryNotification,
    HeapSnapshot { path: PathBuf },
    Compile { source: &'a str, filename: Option<&'a str>, cached_data: Option<&'a [u8]>, produce_cache: bool },
    RunScript { id: u32, as_handle: bool, await_promise: bool },
    EvalModule { source: &'a str, filename: &'a str, cached_data: Option<&'a [u8]>, produce_cache: bool },
}

/// Results of requests.
#[derive(Debug)]
pub(crate) enum Out {
    Value(Value),
    Stats(Box<crate::HeapStats>),
    Script(crate::script::ScriptInfo),
    Module(Box<crate::module::ModuleResult>),
    Unit,
}

impl Out {
    pub(crate) fn into_value(self) -> Result<Value> {
        match self {
            Out::Value(v) => Ok(v),
            Out::Unit => Ok(Value::Undefined),
            other => Err(Error::Conversion(format!("unexpected reply {other:?}"))),
        }
    }
}
