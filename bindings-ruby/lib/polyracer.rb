# frozen_string_literal: true

require "set"
require_relative "polyracer/version"
require_relative "polyracer/errors"

module Polyracer
  # Passed to JS, becomes `undefined` (JS `undefined` comes back as nil).
  UNDEFINED = Object.new
  def UNDEFINED.inspect
    "Polyracer::UNDEFINED"
  end
  UNDEFINED.freeze
end

# A native gem carries one extension per supported Ruby minor, in
# lib/polyracer/<major.minor>/ (an extension is built against one Ruby's
# ABI); the source gem and a development checkout have the one extension
# built for the running Ruby in lib/polyracer/.
# A directory test, not `rescue LoadError`: an extension that is there but
# fails to load must report its own error.
if File.directory?(File.join(__dir__, "polyracer", RUBY_VERSION[/\A\d+\.\d+/]))
  require "polyracer/#{RUBY_VERSION[/\A\d+\.\d+/]}/polyracer"
else
  require "polyracer/polyracer"
end

module Polyracer
  @task_mutex = Mutex.new

  # The Ruby thread that runs contexts' due work (a timer whose callback
  # calls Ruby, an async completion) while no thread is in a call or an
  # await on them: Ruby code may only run on Ruby threads. Started with the
  # first context (and again after `fork`); it sleeps with the GVL released.
  # @return [Thread]
  def self.task_thread
    @task_mutex.synchronize do
      return @task_thread if @task_thread&.alive?

      Polyracer.__expect_drainer
      @task_thread = Thread.new { Polyracer.__drain_tasks }
      @task_thread.name = "polyracer-tasks"
      @task_thread.report_on_exception = false
      @task_thread
    end
  end
end

# polyracer: a V8 JavaScript engine embedded in Ruby.
#
# Each {Context} owns its own V8 isolate and heap and no thread: a call runs
# its JavaScript on the calling Ruby thread with the GVL released, so other
# Ruby threads proceed; Ruby callables attached with {Context#attach} run on
# that thread with the GVL held. Timers and async work that become due while
# no thread is in a call run on the `polyracer-tasks` Ruby thread.
#
# @example
#   require "polyracer"
#   ctx = Polyracer::Context.new(timeout: 1.0)
#   ctx.eval("1 + 1")                           # => 2
#   ctx.attach("greet", ->(name) { "hi #{name}" })
#   ctx.eval("greet('Ruby')")                   # => "hi Ruby"
#
# Values (Ruby ⇄ JS): nil ⇄ null (undefined also becomes nil), true/false,
# Integer ⇄ number (BigInt beyond ±2^53), Float, String (UTF-8; binary
# Strings ⇄ Uint8Array), Symbol → string, Time ⇄ Date, Array, Hash (String
# or Symbol keys → object; other keys → Map; JS Map → Hash), Set ⇄ Set.
# Functions and promises come back as {JSFunction} and {JSPromise} handles.
module Polyracer
  # @!parse
  #   # The embedded V8's version, e.g. `"14.2.231.17"`.
  #   V8_VERSION = "14.2.231.17"
  #   # V8's code-cache version tag (computed on first access).
  #   CACHED_DATA_VERSION_TAG = 0

  class << self
    # Engine options, allowed only before the first context is created (V8
    # starts once per process).
    #
    # @param single_threaded [Boolean] run V8 without worker threads; needed
    #   to create contexts in a child process after `fork`
    # @param flags [Array<String>] V8 command-line flags (`"--harmony"`, ...)
    # @return [void]
    # @raise [InvalidArgumentError] when the engine already started
    def configure(single_threaded: false, flags: [])
      __configure(Array(flags).map(&:to_s), single_threaded ? true : false)
    end

    # Sets V8 flags before first use; see {configure}.
    # @param flags [Array<String>]
    # @return [void]
    def set_flags(*flags)
      configure(flags: flags.flatten)
    end

    # Exception classes that, raised in an attached callable, are not handed
    # to JS as catchable errors but stop the JS and propagate unchanged
    # (`Timeout::Error` by default, so `Timeout.timeout` stays clean).
    # Exceptions that are not `StandardError` (Interrupt, SystemExit...) always
    # do.
    # @return [Array<Class>]
    def escaping_exceptions
      @escaping_exceptions ||= defined?(::Timeout::Error) ? [::Timeout::Error] : []
    end

    # @return [Array<Class>]
    attr_writer :escaping_exceptions

    # @!method resolve_specifier(specifier, referrer)
    #   Resolves an import specifier against the importing module's name the
    #   way polyracer names modules: `("./b.js", "lib/a.js")` → `"lib/b.js"`;
    #   bare specifiers stay as they are.
    #   @param specifier [String]
    #   @param referrer [String]
    #   @return [String]

    # @!visibility private
    # Source in another encoding (ISO-8859-1, UTF-16LE...) as UTF-8, which
    # is what V8 is given; UTF-8, ASCII and binary Strings pass unchanged.
    # @param code [String]
    # @return [String]
    def utf8(code)
      return code unless code.is_a?(String)

      enc = code.encoding
      return code if enc == Encoding::UTF_8 || enc == Encoding::BINARY || enc == Encoding::US_ASCII

      code.encode(Encoding::UTF_8)
    end

    # @!visibility private
    # `CACHED_DATA_VERSION_TAG` is computed on first access: it starts V8,
    # which must not happen at require time (see {configure}).
    def const_missing(name)
      return super unless name == :CACHED_DATA_VERSION_TAG

      const_set(:CACHED_DATA_VERSION_TAG, __cached_data_version_tag)
    end
  end

  # A JavaScript context: its own V8 isolate and heap. Calls run on the
  # calling thread with the GVL released; threads take turns.
  #
  # Thread-safe: calls from several Ruby threads are serialised. Dispose it
  # with {#dispose} (or let the GC do it).
  class Context
    # @param timeout [Float, nil] default timeout in seconds for every call,
    #   0 to 31536000 (a year)
    # @param memory_limit [Integer, Float, nil] memory limit in bytes (V8
    #   heap plus ArrayBuffer memory), 4 MiB to 1 TiB, rounded down to whole
    #   MiB; reaching it raises {OutOfMemoryError}, and buffer allocations
    #   past it throw a RangeError inside JS
    # @raise [InvalidArgumentError] for a timeout or limit out of range
    # @param snapshot [Snapshot, nil] start from this snapshot's heap
    # @param gc_heap_limit [Integer, nil] bytes of V8 heap in use checked
    #   after every garbage collection: a collection that leaves more stops
    #   the running JS with {OutOfMemoryError}. Any size from 1 byte; the
    #   heap may grow past it between collections (MiniRacer's `max_memory`)
    # @param keep_lone_surrogates [Boolean] a JS string with a lone
    #   surrogate (which UTF-8 cannot hold) comes back as a UTF-16LE String
    #   of all its code units, instead of a UTF-8 one with U+FFFD in its place
    # @return [Context]
    def self.new(timeout: nil, memory_limit: nil, snapshot: nil, gc_heap_limit: nil, keep_lone_surrogates: false)
      Polyracer.task_thread
      __new(timeout, memory_limit, snapshot, gc_heap_limit, keep_lone_surrogates ? true : false)
    end

    # Evaluates a script and returns its completion value.
    # @param code [String] JavaScript source
    # @param filename [String, nil] script name for stack traces
    # @param timeout [Float, nil] seconds; overrides the context's default
    # @param share_buffers [Boolean] return every `ArrayBuffer`, typed
    #   array and `DataView` in the result as a writable `IO::Buffer` over
    #   the sandbox's memory instead of a binary String copy. Writes show on
    #   both sides; the memory stays allocated while the buffer (or a slice
    #   of it) lives, after the context is disposed too. The buffer is
    #   locked: `free`, `resize` and `transfer` raise `IO::Buffer::LockedError`.
    #   Resizable JS buffers are still copied (JS could shrink them).
    # @return [Object] the result converted to Ruby
    # @raise [ParseError, JSError, TimeoutError, TerminatedError,
    #   OutOfMemoryError, ConversionError, DisposedError]
    def eval(code, filename: nil, timeout: nil, share_buffers: false)
      __eval(Polyracer.utf8(code), filename, timeout, false, share_buffers ? true : false)
    end

    # Like {#eval}, and if the result is a promise waits for it; a
    # rejection raises {JSError}. The calling thread blocks with the GVL
    # released and runs the context's timers and callbacks while it waits;
    # the context itself is free, so other threads' calls run meanwhile.
    # @param code [String]
    # @param filename [String, nil]
    # @param timeout [Float, nil] seconds
    # @return [Object]
    def eval_await(code, filename: nil, timeout: nil)
      __eval(Polyracer.utf8(code), filename, timeout, true, false)
    end

    # @!method call(function, *args)
    #   Calls a JS function.
    #   @param function [String, Symbol, JSFunction] a dotted global path
    #     (`"JSON.stringify"`), any expression evaluating to a function
    #     (`"(a, b) => a + b"`) or a {JSFunction}
    #   @param args [Array<Object>] converted to JS
    #   @return [Object]

    # @!method call_await(function, *args)
    #   Like {#call}, waiting for the result if it is a promise.
    #   @return [Object]

    # Sets `globalThis[name] = value`.
    # @param name [String, Symbol]
    # @param value [Object]
    # @return [Object] value
    def set_global(name, value)
      __set_global(name.to_s, value)
      value
    end

    # Makes a Ruby callable available to JS as `name` (a global name or a
    # dotted path like `"app.log"`, whose intermediate objects are created).
    # It runs on the Ruby thread that called into JS, with the GVL. Its
    # exceptions become JS errors; uncaught, they come back as the
    # {JSError#cause}. Nested JS → Ruby → JS calls work.
    # @param name [String, Symbol]
    # @param callable [#call, nil] a Proc, Method or object with `#call`
    # @yield the block, when no callable is given
    # @return [void]
    def attach(name, callable = nil, &block)
      callable ||= block
      raise ArgumentError, "attach needs a callable or a block" unless callable

      __attach(name.to_s, callable)
    end

    # Makes an async Ruby callable available to JS as `name`: JS gets a
    # promise. The callable runs like {#attach}'s, with a {Completer} before
    # the JS arguments, and returns at once; any Ruby thread settles the
    # promise later with {Completer#resolve} or {Completer#reject}. The
    # context is free meanwhile, so that thread may call into it.
    # @example
    #   ctx.attach_async("fetch") do |done, url|
    #     Thread.new { done.resolve(Net::HTTP.get(URI(url))) }
    #   end
    #   ctx.eval_await("fetch('https://example.com').then((s) => s.length)")
    # @param name [String, Symbol]
    # @param callable [#call, nil]
    # @yield [completer, *args] the block, when no callable is given
    # @return [void]
    def attach_async(name, callable = nil, &block)
      callable ||= block
      raise ArgumentError, "attach_async needs a callable or a block" unless callable

      __attach_async(name.to_s, callable)
    end

    # @!method terminate
    #   Stops the JS running in this context (from any thread); that call
    #   raises {TerminatedError}, and so does every pending {#eval_await}.
    #   Otherwise does nothing when no JS runs.
    #   @return [void]

    # @!method heap_stats
    #   V8 heap statistics, in bytes unless named otherwise.
    #   @return [Hash{Symbol => Integer}]

    # @!method low_memory_notification
    #   Asks V8 to free as much memory as it can (a full GC).
    #   @return [void]

    # Writes a heap snapshot (Chrome DevTools `.heapsnapshot` JSON).
    # @param path [String, #to_path]
    # @return [void]
    def write_heap_snapshot(path)
      __write_heap_snapshot(path.respond_to?(:to_path) ? path.to_path : path.to_s)
    end

    # @!method dispose
    #   Frees the isolate and its thread. Idempotent; later calls raise
    #   {DisposedError}.
    #   @return [void]

    # @!method disposed?
    #   @return [Boolean]

    # Compiles a script to run many times, optionally with V8's code cache.
    # @param source [String]
    # @param filename [String] script name for stack traces
    # @param cached_data [String, nil] bytes from an earlier {Script#cached_data}
    # @param produce_cache [Boolean] produce {Script#cached_data}
    # @return [Script]
    def compile(source, filename:, cached_data: nil, produce_cache: false)
      __compile(source, filename.to_s, cached_data, produce_cache ? true : false)
    end

    # Evaluates an ES module. Imports (static, and dynamic `import()` later)
    # are loaded through the block, which gets `(specifier, referrer)` and
    # returns the module's source. Top-level await is awaited.
    # @param source [String]
    # @param filename [String] the module's name (its `import.meta.url`)
    # @param timeout [Float, nil] seconds
    # @yieldparam specifier [String] as written in the import (`"./b.js"`);
    #   {Polyracer.resolve_specifier} joins it with the referrer
    # @yieldparam referrer [String] the importing module's name
    # @yieldreturn [String] the module source
    # @return [JSObject] the module namespace
    def eval_module(source, filename:, timeout: nil, &resolver)
      __eval_module(source, filename.to_s, resolver, timeout)
    end

    # @return [String]
    def inspect
      "#<#{self.class.name}#{disposed? ? " disposed" : ""}>"
    end
  end

  # A compiled script (see {Context#compile}).
  class Script
    # Runs the script.
    # @param timeout [Float, nil] seconds
    # @return [Object]
    def run(timeout: nil)
      __run(timeout)
    end

    # @!method cached_data
    #   The produced code cache (a binary String) or nil.
    #   @return [String, nil]

    # @!method cache_rejected?
    #   True when the given cached data was refused (the script compiled
    #   normally).
    #   @return [Boolean]

    # @!method dispose
    #   Frees the compiled script; later runs raise {DisposedError}.
    #   @return [void]
  end

  # A V8 startup snapshot: the heap after running some source. Contexts
  # created from it start with that state.
  class Snapshot
    # Runs `source` in a fresh isolate and captures the heap.
    # @param source [String]
    # @return [Snapshot]
    def self.new(source = "")
      __new(source)
    end

    # @!method warmup!(source)
    #   Recompiles the snapshot after running `source` in a throwaway context,
    #   so contexts from it start with compiled functions.
    #   @param source [String]
    #   @return [self]

    # @!method dump
    #   @return [String] binary bytes for {Snapshot.load}

    # @!method self.load(bytes)
    #   Loads {#dump} bytes; bytes from another V8 version or flags are
    #   refused with {InvalidArgumentError}.
    #   @param bytes [String]
    #   @return [Snapshot]
  end

  # A JS object or array held in its context (not copied). Arrays and other
  # objects come back as handles only when asked (module namespaces,
  # symbols); functions and promises always do, as {JSFunction} and
  # {JSPromise}.
  class JSObject
    # @!method [](key)
    #   @param key [String, Symbol, Integer]
    #   @return [Object] `obj[key]`
    # @!method []=(key, value)
    #   @return [Object] value
    # @!method delete(key)
    #   @return [Boolean] whether the property is gone
    # @!method keys
    #   @return [Array<String>] own enumerable keys, in JS order
    # @!method length
    #   @return [Integer] the `length` property
    # @!method call_method(name, *args)
    #   Calls `obj[name](...args)` with `this` = the object.
    #   @return [Object]
    # @!method to_ruby
    #   @return [Object] a Ruby copy of the value
    # @!method kind
    #   @return [Symbol] `:object`, `:array`, `:function`, `:promise` or `:symbol`
    # @!method context
    #   @return [Context]

    # @param key [String, Symbol]
    # @return [Boolean]
    def key?(key)
      keys.include?(key.to_s)
    end

    # @return [Hash, Array, Object] a Ruby copy
    def to_h
      to_ruby
    end

    # @return [String]
    def inspect
      "#<#{self.class.name} #{kind}>"
    end
  end

  # A JS function.
  class JSFunction < JSObject
    # @!method call(*args)
    #   Calls the function with `this` = undefined.
    #   @return [Object]
    # @!method new(*args)
    #   `new F(...args)`.
    #   @return [Object]

    # Calls with a timeout in seconds.
    # @param timeout [Float, nil]
    # @return [Object]
    def call_with_timeout(timeout, *args)
      __call_timeout(timeout, args)
    end

    # @return [Proc] a lambda calling the function
    def to_proc
      method(:call).to_proc
    end
  end

  # Settles the promise an {Context#attach_async} function gave JS; from
  # any thread, once.
  #
  # @!method resolve(value)
  #   Fulfils the promise with `value` (converted to JS).
  #   @return [void]
  # @!method reject(error)
  #   Rejects the promise with `error` (an exception: its class name and
  #   message reach JS; uncaught, it comes back as the {JSError#cause}).
  #   @return [void]
  # @!method settled?
  #   @return [Boolean] whether `resolve` or `reject` was called
  class Completer
  end

  # A JS promise.
  class JSPromise < JSObject
    # Waits for the promise to settle, running its context's event loop
    # (timers, microtasks); a rejection raises {JSError}.
    # @param timeout [Float, nil] seconds
    # @return [Object] the fulfilled value
    def value(timeout: nil)
      __await(timeout)
    end
    alias await value

    # @!method state
    #   @return [Symbol] `:pending`, `:fulfilled` or `:rejected`
  end
end
