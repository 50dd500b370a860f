//! The process-wide V8 engine (brief §1): initialised once, on first use.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use crate::error::{Error, Result};

/// Settings that must be fixed before V8 starts.
#[derive(Debug, Clone, Default)]
pub struct EngineOptions {
    /// V8 command-line flags, e.g. `["--harmony", "--max-lazy"]`.
    pub flags: Vec<String>,
    /// Run V8 without worker threads (`--single-threaded`), for hosts that
    /// fork: a process that forks after V8 started its worker threads has a
    /// child with no workers.
    pub single_threaded: bool,
}

pub(crate) struct Engine {
    pub(crate) platform: v8::SharedRef<v8::Platform>,
    pub(crate) options: EngineOptions,
    /// `FORK_GENERATION` when V8 started: worker threads exist only there.
    pub(crate) start_generation: u64,
}

static ENGINE: OnceLock<Engine> = OnceLock::new();

static PENDING: Mutex<Option<EngineOptions>> = Mutex::new(None);
/// Incremented in the child after every `fork()`, so a context can tell it
/// was created in another process with one atomic load instead of `getpid`.
pub(crate) static FORK_GENERATION: AtomicU64 = AtomicU64::new(0);

extern "C" fn after_fork_in_child() {
    FORK_GENERATION.fetch_add(1, Ordering::SeqCst);
}

/// Single-threaded engines only, just before `fork()`: lets the child
/// inherit V8's memory. rusty_v8 builds V8 with
/// `v8_enable_private_mapping_fork_optimization`, which marks every mapping
/// V8 allocates `MADV_DONTFORK`; the child then lacks the process-wide
/// read-only heap and pointer cage that a new isolate reuses, and the first
/// context it creates segfaults. Undoing the mark on exactly the mappings
/// that carry it (`dc` in /proc/self/smaps) restores ordinary fork
/// semantics: the child gets copy-on-write pages, like any other memory.
#[cfg(target_os = "linux")]
extern "C" fn before_fork() {
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else { return };
    let mut range: Option<(usize, usize)> = None;
    for line in smaps.lines() {
        if let Some(flags) = line.strip_prefix("VmFlags:") {
            if let Some((start, end)) = range.take() {
                if flags.split_whitespace().any(|f| f == "dc") {
                    // SAFETY: advisory call on a range the kernel just listed
                    // as mapped; it changes only fork inheritance.
                    unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DOFORK) };
                }
            }
        } else if let Some((start, end)) = line.split_whitespace().next().and_then(|r| r.split_once('-')) {
            // A mapping's header line ("start-end perms ..."); attribute
            // lines ("Size: 4 kB") do not parse as a hex range.
            if let (Ok(start), Ok(end)) = (usize::from_str_radix(start, 16), usize::from_str_radix(end, 16)) {
                range = Some((start, end));
            }
        }
    }
}

/// Sets engine options. Allowed only before the first context is created:
/// afterwards V8 is running and its flags are frozen, so this returns
/// [`Error::InvalidArgument`] naming the flags that could not be applied.
pub fn configure(options: EngineOptions) -> Result<()> {
    if ENGINE.get().is_some() {
        return Err(already_started(&options));
    }
    let mut pending = PENDING.lock().unwrap_or_else(|e| e.into_inner());
    // Re-check under the lock: `engine()` takes this lock before starting.
    if ENGINE.get().is_some() {
        return Err(already_started(&options));
    }
    validate_flags(&options.flags)?;
    let merged = match pending.take() {
        Some(mut prev) => {
            prev.flags.extend(options.flags);
            prev.single_threaded |= options.single_threaded;
            prev
        }
        None => options,
    };
    *pending = Some(merged);
    Ok(())
}

/// Sets V8 flags before first use; see [`configure`].
pub fn set_flags<I, S>(flags: I) -> Result<()>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    configure(EngineOptions { flags: flags.into_iter().map(Into::into).collect(), single_threaded: false })
}

fn validate_flags(flags: &[String]) -> Result<()> {
    for f in flags {
        if !f.starts_with("--") || f.len() < 3 || f.contains(char::is_whitespace) {
            return Err(Error::InvalidArgument(format!("V8 flag {f:?} must look like --name or --name=value")));
        }
    }
    Ok(())
}

fn already_started(options: &EngineOptions) -> Error {
    let mut what: Vec<String> = options.flags.clone();
    if options.single_threaded {
        what.push("single_threaded".into());
    }
    Error::InvalidArgument(format!(
        "the V8 engine is already initialised; cannot apply {}: configure the engine before creating the first context",
        if what.is_empty() { "(no options)".to_string() } else { what.join(" ") }
    ))
}

/// True once V8 has been initialised in this process.
pub fn is_initialized() -> bool {
    ENGINE.get().is_some()
}

pub(crate) fn engine() -> &'static Engine {
    let e = ENGINE.get_or_init(|| {
        let options = PENDING.lock().unwrap_or_else(|e| e.into_inner()).take().unwrap_or_default();
        // ICU data must be set before V8 initialises so Intl and normalize() work.
        let _ = v8::icu::set_common_data_74(deno_core_icudata::ICU_DATA);
        let mut flags = options.flags.join(" ");
        if !options.flags.iter().any(|f| f.starts_with("--stack-size") || f.starts_with("--stack_size")) {
            // Calls set the stack limit from the calling thread's real stack
            // (runtime::locker); this is the limit for the snapshot-building
            // thread (32 MiB), where V8's default ~1 MB would cap nesting.
            flags.push_str(" --stack-size=8192");
        }
        if options.single_threaded {
            flags.push_str(" --single-threaded");
        }
        if !flags.trim().is_empty() {
            v8::V8::set_flags_from_string(&flags);
        }
        // The unprotected platform: with memory protection keys, threads not
        // descended from the initialising thread crash when they run JS, and
        // host runtimes create threads whenever they like.
        let platform = if options.single_threaded {
            v8::new_single_threaded_default_platform(false).make_shared()
        } else {
            v8::new_unprotected_default_platform(0, false).make_shared()
        };
        v8::V8::initialize_platform(platform.clone());
        v8::V8::initialize();
        // SAFETY: registering a plain extern "C" fn that only touches an atomic.
        unsafe {
            #[cfg(target_os = "linux")]
            let prepare: Option<unsafe extern "C" fn()> =
                if options.single_threaded { Some(before_fork) } else { None };
            #[cfg(not(target_os = "linux"))]
            let prepare: Option<unsafe extern "C" fn()> = None;
            libc::pthread_atfork(prepare, None, Some(after_fork_in_child));
        }
        Engine { platform, options, start_generation: FORK_GENERATION.load(Ordering::SeqCst) }
    });
    e
}

/// Errors when V8 started with worker threads in a parent process that
/// has since forked: the threads do not exist here, so V8 would hang.
pub(crate) fn check_fork_safe(engine: &Engine) -> Result<()> {
    if FORK_GENERATION.load(Ordering::SeqCst) != engine.start_generation && !engine.options.single_threaded {
        return Err(Error::Disposed(
            "V8 was started before fork() with worker threads, which the child process does not have; \
             configure the engine with single_threaded before first use to create contexts after fork"
                .into(),
        ));
    }
    Ok(())
}

/// The options the engine was started with, if it has started.
pub fn options() -> Option<EngineOptions> {
    ENGINE.get().map(|e| e.options.clone())
}

/// The embedded V8's version, e.g. `"14.2.231.17"`.
pub fn v8_version() -> &'static str {
    v8::V8::get_version()
}
