//! JS exceptions as `Error`s: name, message, stack and the host cause.

use super::State;
use crate::convert;
use crate::error::{Error, JsException, StackFrame};
use crate::value::Value;

/// Turns the exception caught by `tc` into an [`Error`].
pub(crate) fn caught(tc: &mut v8::PinnedRef<v8::TryCatch<v8::HandleScope>>, st: &State, compiling: bool) -> Error {
    if tc.has_terminated() || st.interrupted() {
        return st.termination_error();
    }
    let exc = tc.exception();
    let msg = tc.message();
    match exc {
        Some(exc) => {
            let ex = exception(tc, Some(st), exc, msg);
            if compiling && ex.name == "SyntaxError" {
                Error::Parse(Box::new(ex))
            } else {
                Error::Js(Box::new(ex))
            }
        }
        None => st.termination_error(),
    }
}

/// Builds a `JsException`. Without a `State` (snapshot building) the
/// thrown value is not converted and no host cause is looked up.
pub(crate) fn exception(
    scope: &mut v8::PinScope,
    st: Option<&State>,
    exc: v8::Local<v8::Value>,
    msg: Option<v8::Local<v8::Message>>,
) -> JsException {
    let (mut filename, mut line, mut column) = (None, None, None);
    // The stack the error captured when it was created, else the one V8
    // recorded where it was thrown.
    let mut trace = v8::Exception::get_stack_trace(scope, exc);
    if let Some(m) = msg {
        filename =
            m.get_script_resource_name(scope).filter(|n| !n.is_undefined()).map(|n| n.to_rust_string_lossy(scope));
        line = m.get_line_number(scope).map(|l| l as u32);
        // -1 (as usize) when V8 has no position, e.g. for promise rejections.
        column = u32::try_from(m.get_start_column()).ok().and_then(|c| c.checked_add(1));
        if trace.is_none() {
            trace = m.get_stack_trace(scope);
        }
    }
    let mut stack_frames = Vec::new();
    if let Some(trace) = trace {
        for i in 0..trace.get_frame_count() {
            let Some(f) = trace.get_frame(scope, i) else {
                continue;
            };
            stack_frames.push(StackFrame {
                function: f.get_function_name(scope).map(|n| n.to_rust_string_lossy(scope)).filter(|n| !n.is_empty()),
                file: f.get_script_name_or_source_url(scope).map(|s| s.to_rust_string_lossy(scope)),
                line: f.get_line_number() as u32,
                column: f.get_column() as u32,
            });
        }
    }
    if stack_frames.is_empty() {
        if let (Some(l), Some(c)) = (line, column) {
            stack_frames.push(StackFrame { function: None, file: filename.clone(), line: l, column: c });
        }
    }
    let frames: String = stack_frames.iter().map(|f| format!("\n    at {f}")).collect();
    let location = || match (&filename, line, column) {
        (Some(f), Some(l), Some(c)) => format!("{f}:{l}:{c}"),
        _ => "<unknown>".into(),
    };
    let mut cause = None;
    let (name, message, stack) = if let Ok(obj) = v8::Local::<v8::Object>::try_from(exc) {
        if let Some(st) = st {
            let key = v8::Local::new(scope, &st.host_error_key);
            if let Some(id) = obj.get_private(scope, key).filter(|v| v.is_number()) {
                let id = id.number_value(scope).unwrap_or(-1.0) as u32;
                cause = st.host_errors.borrow().get(&id).cloned();
            }
        }
        let name = convert::get_str(scope, obj, "name").unwrap_or_default();
        let message = convert::get_str(scope, obj, "message").unwrap_or_else(|| exc.to_rust_string_lossy(scope));
        let mut stack = convert::get_str(scope, obj, "stack").unwrap_or_default();
        if stack.is_empty() || !stack.contains("\n    at ") {
            // Syntax errors and objects without a captured stack: say where.
            if stack.is_empty() {
                stack = if name.is_empty() { message.clone() } else { format!("{name}: {message}") };
            }
            if frames.is_empty() {
                stack.push_str(&format!("\n    at {}", location()));
            } else {
                stack.push_str(&frames);
            }
        }
        (name, message, stack)
    } else {
        let message = exc.to_rust_string_lossy(scope);
        let stack = if frames.is_empty() {
            format!("Uncaught {message}\n    at {}", location())
        } else {
            format!("Uncaught {message}{frames}")
        };
        (String::new(), message, stack)
    };
    let report = report(scope, exc, msg);
    let exc = v8::Local::new(scope, exc);
    let value = st.and_then(|st| crate::transfer::to_value(scope, st, exc, false).ok()).unwrap_or(Value::Undefined);
    JsException {
        name,
        message,
        stack,
        value: Box::new(value),
        frames: stack_frames,
        filename,
        line,
        column,
        report,
        cause,
    }
}

/// Source lines longer than this are cut around the error in reports (a
/// minified bundle is one line of megabytes).
const REPORT_LINE_MAX: usize = 240;

/// d8's report of an uncaught exception (see [`JsException::report`]).
fn report(scope: &mut v8::PinScope, exc: v8::Local<v8::Value>, msg: Option<v8::Local<v8::Message>>) -> String {
    let mut out = exc.to_rust_string_lossy(scope);
    if let Some(m) = msg {
        let file = m.get_script_resource_name(scope).map(|n| n.to_rust_string_lossy(scope));
        let line = m.get_line_number(scope).map_or(-1, |l| l as i64);
        out = format!("{}:{line}: {out}\n", file.as_deref().unwrap_or("undefined"));
        if let Some(src) = m.get_source_line(scope) {
            let src: Vec<char> = src.to_rust_string_lossy(scope).chars().collect();
            // V8 gives -1 (as usize) when it has no position: no underline
            // beyond the line then.
            let start = m.get_start_column().min(src.len());
            let end = m.get_end_column().clamp(start + 1, src.len().max(start + 1));
            // A window of the line around the error when it is very long.
            let from = if src.len() > REPORT_LINE_MAX { start.saturating_sub(REPORT_LINE_MAX / 2) } else { 0 };
            let to = src.len().min(from + REPORT_LINE_MAX.max(end - from));
            let shown: String = src.get(from..to).map(|c| c.iter().collect()).unwrap_or_default();
            let lead = " ".repeat(start.saturating_sub(from));
            let marks = "^".repeat((end - start).min(REPORT_LINE_MAX));
            out.push_str(&format!("{shown}\n{lead}{marks}\n"));
        }
    } else {
        out.push('\n');
    }
    if let Ok(obj) = v8::Local::<v8::Object>::try_from(exc) {
        if let Some(stack) = v8::String::new(scope, "stack").and_then(|k| obj.get(scope, k.into())) {
            if stack.is_string() {
                out.push_str(&format!("\n{}\n", stack.to_rust_string_lossy(scope)));
            }
        }
    }
    out
}
