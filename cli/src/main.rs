//! `polyracer`: run JS files and expressions in a sandboxed V8 context.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use polyracer::{Context, ContextOptions, Error, EvalOptions, Value};

/// Exit codes, so scripts can tell failures apart.
mod exit {
    pub const JS_ERROR: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const SYNTAX: u8 = 3;
    pub const TIMEOUT: u8 = 4;
    pub const OUT_OF_MEMORY: u8 = 5;
    pub const OTHER: u8 = 6;
}

#[derive(Parser)]
#[command(name = "polyracer", version, about = "Run JavaScript in a sandboxed V8 context", long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    limits: Limits,
}

#[derive(clap::Args, Clone, Default)]
struct Limits {
    /// Stop execution after this many milliseconds.
    #[arg(long, global = true, value_name = "MS")]
    timeout: Option<u64>,
    /// Heap limit, in bytes; suffixes K, M, G accepted (e.g. 64M).
    #[arg(long, global = true, value_name = "BYTES", value_parser = parse_size)]
    memory_limit: Option<usize>,
    /// V8 flags, space separated (e.g. "--expose-gc --max-lazy").
    #[arg(long, global = true, value_name = "FLAGS", allow_hyphen_values = true)]
    v8_flags: Option<String>,
    /// Run V8 without worker threads.
    #[arg(long, global = true)]
    single_threaded: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Run a JavaScript file. `console.log` and friends print to stdout/stderr.
    Run { file: PathBuf },
    /// Evaluate an expression and print its value as JSON (promises are awaited).
    Eval { expression: String },
    /// Start the interactive shell (the default without a command).
    Repl,
}

fn parse_size(s: &str) -> Result<usize, String> {
    let s = s.trim();
    let (digits, mult) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let mult: usize = match c.to_ascii_uppercase() {
                'K' => 1 << 10,
                'M' => 1 << 20,
                'G' => 1 << 30,
                'B' => 1,
                _ => return Err(format!("unknown size suffix {c:?}: use K, M or G")),
            };
            (&s[..i], mult)
        }
        _ => (s, 1),
    };
    let n: f64 = digits.trim().parse().map_err(|_| format!("{s:?} is not a size like 64M or 1048576"))?;
    if !(n.is_finite() && n > 0.0) {
        return Err(format!("{s:?} must be positive"));
    }
    Ok((n * mult as f64) as usize)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.limits.v8_flags.is_some() || cli.limits.single_threaded {
        let flags = cli.limits.v8_flags.as_deref().unwrap_or("").split_whitespace().map(String::from).collect();
        if let Err(e) =
            polyracer::configure(polyracer::EngineOptions { flags, single_threaded: cli.limits.single_threaded })
        {
            eprintln!("polyracer: {e}");
            return ExitCode::from(exit::USAGE);
        }
    }
    let ctx = match Context::new(ContextOptions {
        timeout: cli.limits.timeout.map(Duration::from_millis),
        memory_limit: cli.limits.memory_limit,
    }) {
        Ok(c) => c,
        Err(e) => return report(&e),
    };
    if let Err(e) = install_console(&ctx) {
        return report(&e);
    }
    match cli.command.unwrap_or(Command::Repl) {
        Command::Run { file } => run_file(&ctx, &file),
        Command::Eval { expression } => {
            let opts = EvalOptions { filename: Some("<eval>".into()), await_promise: true, ..Default::default() };
            match ctx.eval_with(&expression, opts) {
                Ok(v) => {
                    println!("{v}");
                    ExitCode::SUCCESS
                }
                Err(e) => report(&e),
            }
        }
        Command::Repl => repl(&ctx),
    }
}

fn run_file(ctx: &Context, file: &std::path::Path) -> ExitCode {
    let source = match std::fs::read_to_string(file) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("polyracer: cannot read {}: {e}", file.display());
            return ExitCode::from(exit::USAGE);
        }
    };
    let opts = EvalOptions { filename: Some(file.display().to_string()), await_promise: true, ..Default::default() };
    let result = ctx.eval_with(&source, opts).and_then(|_| ctx.run_event_loop(None));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => report(&e),
    }
}

/// Formats console arguments the way browsers do: strings as they are,
/// other values in their readable form, separated by spaces.
fn format_args(args: &[Value]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        match a {
            Value::String(s) => out.push_str(s),
            other => out.push_str(&other.to_string()),
        }
    }
    out
}

fn install_console(ctx: &Context) -> polyracer::Result<()> {
    for name in ["log", "info", "debug"] {
        ctx.expose(&format!("console.{name}"), |_, args| {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{}", format_args(&args));
            Ok(Value::Undefined)
        })?;
    }
    for name in ["warn", "error"] {
        ctx.expose(&format!("console.{name}"), |_, args| {
            eprintln!("{}", format_args(&args));
            Ok(Value::Undefined)
        })?;
    }
    Ok(())
}

fn report(e: &Error) -> ExitCode {
    let code = match e {
        Error::Parse(ex) => {
            eprintln!("{}", ex.stack);
            exit::SYNTAX
        }
        Error::Js(ex) => {
            eprintln!("Uncaught {}", if ex.stack.is_empty() { ex.to_string() } else { ex.stack.clone() });
            exit::JS_ERROR
        }
        Error::Timeout => {
            eprintln!("polyracer: {e}");
            exit::TIMEOUT
        }
        Error::OutOfMemory => {
            eprintln!("polyracer: {e}");
            exit::OUT_OF_MEMORY
        }
        Error::InvalidArgument(_) => {
            eprintln!("polyracer: {e}");
            exit::USAGE
        }
        _ => {
            eprintln!("polyracer: {e}");
            exit::OTHER
        }
    };
    ExitCode::from(code)
}

/// True when the source ends mid-statement, so the shell should read
/// another line instead of reporting a syntax error.
fn incomplete(e: &Error) -> bool {
    matches!(e, Error::Parse(ex) if ex.message.contains("Unexpected end of input")
        || ex.message.contains("Unterminated template literal"))
}

fn repl(ctx: &Context) -> ExitCode {
    let mut editor = match rustyline::DefaultEditor::new() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("polyracer: cannot start the shell: {e}");
            return ExitCode::from(exit::OTHER);
        }
    };
    let history = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".polyracer_history"));
    if let Some(h) = &history {
        let _ = editor.load_history(h);
    }
    println!("polyracer {} (V8 {}): .exit or Ctrl-D to quit", env!("CARGO_PKG_VERSION"), polyracer::v8_version());
    let mut buffer = String::new();
    loop {
        let prompt = if buffer.is_empty() { "> " } else { "... " };
        match editor.readline(prompt) {
            Ok(line) => {
                if buffer.is_empty() && line.trim() == ".exit" {
                    break;
                }
                buffer.push_str(&line);
                buffer.push('\n');
                let opts = EvalOptions { filename: Some("<repl>".into()), await_promise: true, ..Default::default() };
                match ctx.eval_with(&buffer, opts) {
                    Err(e) if incomplete(&e) => continue,
                    Ok(v) => println!("{v}"),
                    Err(e) => {
                        report(&e);
                    }
                }
                let _ = editor.add_history_entry(buffer.trim_end());
                buffer.clear();
            }
            Err(rustyline::error::ReadlineError::Interrupted) => {
                if buffer.is_empty() {
                    println!("(Ctrl-D or .exit to quit)");
                }
                buffer.clear();
            }
            Err(_) => break,
        }
    }
    if let Some(h) = &history {
        let _ = editor.save_history(h);
    }
    ExitCode::SUCCESS
}
