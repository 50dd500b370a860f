//! `polyracer`: run JS files and expressions in a sandboxed V8 context.

use std::io::Write;
use std::path::{Path, PathBuf};
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
    #[arg(long, global = true, value_name = "MS", value_parser = parse_timeout)]
    timeout: Option<Duration>,
    /// Heap limit, in bytes; suffixes K, M, G accepted (e.g. 64M).
    #[arg(long, global = true, value_name = "BYTES", value_parser = parse_size)]
    memory_limit: Option<usize>,
    /// V8 flags, space separated (e.g. "--expose-gc --max-lazy").
    #[arg(long, global = true, value_name = "FLAGS", allow_hyphen_values = true)]
    v8_flags: Option<String>,
    /// Run V8 without worker threads.
    #[arg(long, global = true)]
    single_threaded: bool,
    /// Start the context from a snapshot made by `polyracer snapshot build`.
    #[arg(long, global = true, value_name = "FILE")]
    snapshot: Option<PathBuf>,
}

#[derive(Subcommand)]
enum SnapshotCommand {
    /// Run SRC and save the resulting heap as a snapshot.
    Build {
        src: PathBuf,
        #[arg(short, long, value_name = "FILE")]
        output: PathBuf,
        /// Also run this file to compile functions before capture (its
        /// effects are discarded).
        #[arg(long, value_name = "FILE")]
        warmup: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum Command {
    /// Run a JavaScript file. `console.log` and friends print to stdout/stderr.
    Run {
        file: PathBuf,
        /// Run as an ES module (the default for .mjs files). Relative and
        /// absolute imports are read from the file system.
        #[arg(long)]
        module: bool,
        /// Keep compiled code caches in this directory between runs.
        #[arg(long, value_name = "DIR")]
        code_cache: Option<PathBuf>,
    },
    /// Build V8 startup snapshots.
    Snapshot {
        #[command(subcommand)]
        action: SnapshotCommand,
    },
    /// Evaluate an expression and print its value as JSON (promises are awaited).
    Eval { expression: String },
    /// Start the interactive shell (the default without a command).
    Repl,
}

/// `--memory-limit`: core parses and checks it, so the CLI accepts exactly
/// what every binding accepts.
fn parse_size(s: &str) -> Result<usize, String> {
    polyracer::limits::parse_byte_size(s).and_then(polyracer::limits::memory_limit).map_err(|e| e.to_string())
}

/// `--timeout` in milliseconds, checked by core like every binding's.
fn parse_timeout(s: &str) -> Result<Duration, String> {
    let ms: f64 = s.trim().parse().map_err(|_| format!("{s:?} is not a number of milliseconds"))?;
    polyracer::limits::timeout(ms, polyracer::limits::TimeUnit::Milliseconds).map_err(|e| e.to_string())
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
    if let Some(Command::Snapshot { action: SnapshotCommand::Build { src, output, warmup } }) = &cli.command {
        return build_snapshot(src, output, warmup.as_deref());
    }
    let snapshot = match &cli.limits.snapshot {
        Some(path) => match std::fs::read(path)
            .map_err(|e| e.to_string())
            .and_then(|b| polyracer::Snapshot::load(&b).map_err(|e| e.to_string()))
        {
            Ok(s) => Some(s),
            Err(e) => {
                eprintln!("polyracer: cannot use snapshot {}: {e}", path.display());
                return ExitCode::from(exit::USAGE);
            }
        },
        None => None,
    };
    let ctx = match Context::new(ContextOptions {
        timeout: cli.limits.timeout,
        memory_limit: cli.limits.memory_limit,
        snapshot,
        ..Default::default()
    }) {
        Ok(c) => c,
        Err(e) => return report(&e),
    };
    if let Err(e) = install_console(&ctx) {
        return report(&e);
    }
    match cli.command.unwrap_or(Command::Repl) {
        Command::Run { file, module, code_cache } => {
            let module = module || file.extension().is_some_and(|e| e == "mjs");
            run_file(&ctx, &file, module, code_cache.as_deref())
        }
        Command::Snapshot { .. } => unreachable!("handled above"),
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

fn read_source(file: &Path) -> Result<String, ExitCode> {
    std::fs::read_to_string(file).map_err(|e| {
        eprintln!("polyracer: cannot read {}: {e}", file.display());
        ExitCode::from(exit::USAGE)
    })
}

fn build_snapshot(src: &Path, output: &Path, warmup: Option<&Path>) -> ExitCode {
    let source = match read_source(src) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let mut snap = match polyracer::Snapshot::create(&source) {
        Ok(s) => s,
        Err(e) => return report(&e),
    };
    if let Some(w) = warmup {
        let warm = match read_source(w) {
            Ok(s) => s,
            Err(code) => return code,
        };
        snap = match snap.warmup(&warm) {
            Ok(s) => s,
            Err(e) => return report(&e),
        };
    }
    if let Err(e) = std::fs::write(output, snap.as_bytes()) {
        eprintln!("polyracer: cannot write {}: {e}", output.display());
        return ExitCode::from(exit::USAGE);
    }
    println!("wrote {} ({} bytes)", output.display(), snap.as_bytes().len());
    ExitCode::SUCCESS
}

/// Cache file for `file` in `dir`, keyed by path, contents and V8's cache tag.
fn cache_path(dir: &Path, file: &Path, source: &str) -> PathBuf {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    file.hash(&mut h);
    source.hash(&mut h);
    polyracer::cached_data_version_tag().hash(&mut h);
    dir.join(format!("{:016x}.v8cache", h.finish()))
}

fn run_file(ctx: &Context, file: &Path, module: bool, code_cache: Option<&Path>) -> ExitCode {
    let source = match read_source(file) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let path = std::fs::canonicalize(file).unwrap_or_else(|_| file.to_path_buf());
    let name = path.display().to_string();
    if let Some(dir) = code_cache {
        if let Err(e) = std::fs::create_dir_all(dir) {
            eprintln!("polyracer: cannot create {}: {e}", dir.display());
            return ExitCode::from(exit::USAGE);
        }
    }
    let cache_file = code_cache.map(|d| cache_path(d, &path, &source));
    let cached = cache_file.as_ref().and_then(|p| std::fs::read(p).ok());
    let produced;
    let result = if module {
        let resolver = |spec: &str, referrer: &str| -> Result<String, polyracer::HostError> {
            if !(spec.starts_with("./") || spec.starts_with("../") || spec.starts_with('/')) {
                return Err(polyracer::HostError::new(format!(
                    "cannot import {spec:?}: the CLI loads only relative and absolute file paths"
                )));
            }
            let target = polyracer::resolve_specifier(spec, referrer);
            std::fs::read_to_string(&target).map_err(|e| polyracer::HostError::new(format!("{target}: {e}")))
        };
        let opts = polyracer::ModuleOptions {
            cached_data: cached.as_deref(),
            produce_cache: code_cache.is_some(),
            timeout: None,
        };
        match ctx.eval_module_with(&source, &name, resolver, opts) {
            Ok(m) => {
                produced = m.cached_data;
                Ok(())
            }
            Err(e) => {
                produced = None;
                Err(e)
            }
        }
    } else {
        let opts = polyracer::CompileOptions {
            filename: Some(&name),
            cached_data: cached.as_deref(),
            produce_cache: code_cache.is_some(),
        };
        match ctx.compile(&source, opts) {
            Ok(script) => {
                produced = script.cached_data().map(<[u8]>::to_vec);
                let eo = EvalOptions { await_promise: true, ..Default::default() };
                script.run_with(eo).map(drop)
            }
            Err(e) => {
                produced = None;
                Err(e)
            }
        }
    };
    if let (Some(p), Some(bytes)) = (&cache_file, &produced) {
        let _ = std::fs::write(p, bytes);
    }
    match result.and_then(|_| ctx.run_event_loop(None)) {
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
