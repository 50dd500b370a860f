# frozen_string_literal: true

require "polyracer"
require_relative "mini_racer/errors"
require_relative "mini_racer/values"

# The MiniRacer API on top of polyracer. Switch with one line:
#
#   require "polyracer/mini_racer"   # was: require "mini_racer"
#
# It follows mini_racer 0.22 and passes its test suite
# (`ci/compat-suites.sh`; see docs/migrate-mini_racer.md). Differences:
# - `isolate:` and `marshal_stack_depth:` are accepted and ignored (every
#   context has its own isolate; nesting is limited to 2000 levels);
# - JS functions come back as {MiniRacer::JavaScriptFunction}s that can be
#   called (`#call`), not only printed;
# - {MiniRacer::RuntimeError} also answers {Polyracer::JSErrorDetails}.
module MiniRacer
  # The mini_racer release whose API and behaviour this layer follows.
  VERSION = "0.22.0"

  # Binary data: a JS Uint8Array. Polyracer also converts binary (ASCII-8BIT)
  # Strings both ways; this wrapper exists for code written for MiniRacer.
  class Binary
    # @return [String] the bytes (ASCII-8BIT)
    attr_reader :data

    # @param data [String]
    # @raise [TypeError] for anything but a String
    def initialize(data)
      raise TypeError, "wrong argument type #{data.class} (expected String)" unless data.is_a?(String)

      @data = data.b
    end
  end

  # A JS function returned to Ruby.
  class JavaScriptFunction
    # @!visibility private
    def initialize(handle, context)
      @handle = handle
      @context = context
    end

    # Calls the function.
    # @return [Object]
    def call(*args)
      @context.__send__(:run) { @handle.call(*args.map { |a| Values.to_js(a) }) }
    end

    # @return [String]
    def to_s
      "JavaScript Function"
    end
    alias inspect to_s
  end

  # V8 platform settings.
  module Platform
    # MiniRacer's bound on one flag, `--name=value` included.
    MAX_FLAG_LENGTH = 255
    @flags = []
    @single_threaded = false

    class << self
      # Sets V8 flags; only before the first context is created. Calls add
      # up. `:single_threaded` runs V8 without worker threads (needed to use
      # contexts in a child process after `fork`).
      #   MiniRacer::Platform.set_flags!(:noconcurrent_recompilation, max_lazy: true)
      # @return [void]
      # @raise [ArgumentError] for a flag with a NUL byte or longer than 255 bytes
      # @raise [PlatformAlreadyInitialized] after the engine started
      def set_flags!(*args, **kwargs)
        flags = args.map { |a| flag(a, nil) } + kwargs.map { |k, v| flag(k, v) }
        raise PlatformAlreadyInitialized, "V8 already started" if Polyracer.engine_started?

        single, rest = flags.partition { |f| %w[--single_threaded --single-threaded].include?(f) }
        @single_threaded ||= !single.empty?
        @flags.concat(rest)
        Polyracer.configure(single_threaded: @single_threaded, flags: @flags)
      rescue Polyracer::InvalidArgumentError => e
        raise PlatformAlreadyInitialized, e.message
      end

      private

      def flag(name, value)
        name = name.to_s
        name = name[2..] if name.start_with?("--")
        text = case value
               when nil, true then "--#{name}"
               when false then "--no#{name}"
               else "--#{name}=#{value}"
               end
        raise ArgumentError, "flag contains NUL byte" if text.include?("\0")
        raise ArgumentError, "flag too long" if text.bytesize > MAX_FLAG_LENGTH

        text
      end
    end
  end

  # A V8 startup snapshot.
  class Snapshot
    # @return [Polyracer::Snapshot]
    attr_reader :polyracer_snapshot

    # @param source [String] JS run before the heap is captured
    # @raise [SnapshotError] when the source throws
    def initialize(source = "")
      @polyracer_snapshot = Snapshot.translate { Polyracer::Snapshot.new(source) }
    end

    # @param bytes [String] from {#dump}
    # @return [Snapshot]
    def self.load(bytes)
      snap = allocate
      snap.instance_variable_set(:@polyracer_snapshot, translate { Polyracer::Snapshot.load(bytes) })
      snap
    end

    # Compiles the snapshot's functions by running `src` in a throwaway context.
    # @return [self]
    def warmup!(src)
      Snapshot.translate { @polyracer_snapshot.warmup!(src) }
      self
    end

    # @return [String] binary
    def dump
      @polyracer_snapshot.dump
    end

    # @return [Integer] bytes
    def size
      dump.bytesize
    end

    # @!visibility private
    # SnapshotError's message is V8's report of an uncaught exception
    # (`"Uncaught Error: boom"`), then the JS stack.
    def self.translate
      yield
    rescue Polyracer::JSError, Polyracer::ParseError => e
      frames = e.js_stack.lines.drop(1).join
      text = e.js_name.empty? ? e.message : "#{e.js_name}: #{e.message}"
      raise SnapshotError, "Uncaught #{text}#{"\n" unless frames.empty?}#{frames}"
    rescue Polyracer::Error => e
      raise SnapshotError, e.message
    end
  end

  # A JavaScript context with MiniRacer's API.
  class Context
    # MiniRacer's bound for `timeout:`, `max_memory:` and
    # `ensure_gc_after_idle:`.
    INT32_MAX = (2**31) - 1
    # Where {#attach} first defines a callable whose path polyracer's
    # attach refuses (a NUL byte, a primitive on the way).
    ATTACH_SLOT = "__polyracer_mini_racer_attach"
    # Dotted paths polyracer's `call` and `attach` take directly.
    SIMPLE_PATH = /\A[A-Za-z_$][\w$]*(\.[A-Za-z_$][\w$]*)*\z/
    # JS for the other paths, walked as MiniRacer walks them.
    PATH_HELPERS = {
      call_path: <<~JS,
        (path, ...args) => {
          const keys = path.split(".");
          let holder = globalThis;
          for (const k of keys.slice(0, -1)) holder = Object(holder[k]);
          const f = holder[keys[keys.length - 1]];
          if (typeof f !== "function") throw new TypeError("not a function");
          return Reflect.apply(f, holder, args);
        }
      JS
      attach_at: <<~JS
        (path, slot) => {
          const f = globalThis[slot];
          delete globalThis[slot];
          const keys = path.split(".");
          let o = globalThis;
          for (const k of keys.slice(0, -1)) {
            let v = o[k];
            if (v === null || (typeof v !== "object" && typeof v !== "function")) o[k] = v = {};
            o = v;
          }
          o[keys[keys.length - 1]] = f;
        }
      JS
    }.freeze
    private_constant :PATH_HELPERS

    # @param timeout [Integer, nil] milliseconds
    # @param max_memory [Integer, nil] bytes of V8 heap in use, checked after
    #   every garbage collection (MiniRacer's rule): a collection that leaves
    #   more raises {V8OutOfMemoryError}
    # @param snapshot [Snapshot, nil]
    # @param ensure_gc_after_idle [Integer, nil] milliseconds of idleness
    #   after which a full GC runs
    # @raise [ArgumentError] for a value out of MiniRacer's bounds
    def initialize(timeout: nil, max_memory: nil, snapshot: nil, ensure_gc_after_idle: nil, isolate: nil,
                   marshal_stack_depth: nil)
      _ = [isolate, marshal_stack_depth]
      check_bound(:timeout, timeout, INT32_MAX)
      check_bound(:max_memory, max_memory, (2**32) - 2)
      check_bound(:ensure_gc_after_idle, ensure_gc_after_idle, INT32_MAX)
      @timeout = timeout
      @ctx = Errors.translate do
        Polyracer::Context.new(timeout: timeout && timeout / 1000.0,
                               gc_heap_limit: max_memory&.positive? ? max_memory : nil,
                               snapshot: snapshot&.polyracer_snapshot, keep_lone_surrogates: true)
      end
      @functions = {}
      @helpers = {}
      @in_callback = {}
      @idle_gc = ensure_gc_after_idle && ensure_gc_after_idle / 1000.0
      @last_call = nil
      @gc_thread = nil
    end

    # @return [Polyracer::Context] the underlying context
    attr_reader :ctx

    # Evaluates JavaScript.
    # @param str [String]
    # @param options [Hash, nil] `filename:`
    # @return [Object]
    def eval(str, options = nil)
      run { @ctx.eval(str, filename: filename_of(options)) }
    end

    # Evaluates and waits for the resulting promise.
    # @return [Object]
    # @raise [RuntimeError] from inside an attached callable (MiniRacer
    #   cannot nest an await there)
    def eval_await(str, options = nil)
      refuse_nested_await
      run { @ctx.eval_await(str, filename: filename_of(options)) }
    end

    # Calls a JS function by name (a dotted path), `this` being its holder.
    # @return [Object]
    def call(function_name, *arguments)
      run { call_path(:call, function_name, arguments) }
    end

    # Calls a JS function by name and waits for the promise it returns.
    # @return [Object]
    def call_await(function_name, *arguments)
      refuse_nested_await
      run { call_path(:call_await, function_name, arguments) }
    end

    # Attaches a Ruby callable as a JS function. Intermediate objects of a
    # dotted path are created (replacing primitives, as MiniRacer does).
    # An exception it raises that JS does not catch is raised again, as
    # itself, by the call that ran the JS.
    # @param name [String] a global name or dotted path
    # @param callback [#call]
    # @return [void]
    def attach(name, callback)
      name = name.to_s
      @functions[name] = callback
      wrapped = lambda do |*args|
        in_callback { Values.to_js(callback.call(*args.map { |a| Values.from_js(a, self) })) }
      end
      Errors.translate do
        if SIMPLE_PATH.match?(name)
          begin
            return @ctx.attach(name, wrapped)
          rescue Polyracer::InvalidArgumentError
            nil # a primitive on the path: MiniRacer replaces it
          end
        end
        @ctx.attach(ATTACH_SLOT, wrapped)
        js_helper(:attach_at) { |c| c.eval(PATH_HELPERS[:attach_at]) }.call(name, ATTACH_SLOT)
      end
    end

    # Evaluates a file's content.
    # @return [Object]
    def load(filename)
      eval(File.read(filename), filename: filename)
    end

    # Stops the running script (from another thread or a callback); it
    # raises {ScriptTerminatedError}.
    # @return [void]
    def stop
      @ctx.terminate
    end

    # @return [void]
    # @raise [RuntimeError] from an attached callable of this context (its
    #   JS is running: MiniRacer refuses, and the context stays usable)
    def dispose
      raise RuntimeError, "Error: the context is busy running the callback that disposes it" if @in_callback.key?(Thread.current)

      @gc_thread&.kill
      @ctx.dispose
    end

    # Runs V8's pending tasks (a WebAssembly compile finishing, an
    # `Atomics.waitAsync` timing out) and due timers.
    # @return [Boolean] whether there was anything to run
    def pump_message_loop
      Errors.translate { @ctx.run_pending_tasks }
    end

    # Runs the queued promise reactions now (from a callback: before the JS
    # that called it goes on).
    # @return [nil]
    def perform_microtask_checkpoint
      Errors.translate { @ctx.perform_microtask_checkpoint }
      nil
    end

    # @return [Hash{Symbol => Integer}]
    def heap_stats
      Errors.translate { @ctx.heap_stats }
    end

    # @return [void]
    def low_memory_notification
      Errors.translate { @ctx.low_memory_notification }
    end

    # Kept for MiniRacer compatibility: same as {#low_memory_notification}.
    # @return [Boolean]
    def idle_notification(_idle_time_ms = nil)
      low_memory_notification
      true
    end

    # Writes a heap snapshot to a path or IO.
    # @return [void]
    def write_heap_snapshot(file_or_io)
      if file_or_io.respond_to?(:write)
        require "tempfile"
        Tempfile.create(["polyracer", ".heapsnapshot"]) do |f|
          Errors.translate { @ctx.write_heap_snapshot(f.path) }
          file_or_io.write(File.binread(f.path))
        end
      else
        Errors.translate { @ctx.write_heap_snapshot(file_or_io) }
      end
    end

    # @!visibility private
    # A JS helper function of this context, compiled on first use.
    def js_helper(name)
      @helpers[name] ||= yield(@ctx)
    end

    private

    def run
      result = Errors.translate { Values.from_js(yield, self) }
      schedule_idle_gc
      result
    end

    def call_path(method, name, arguments)
      args = arguments.map { |a| Values.to_js(a) }
      raise ArgumentError, "wrong number of arguments (given 0, expected 1+)" if name.nil?

      name = name.to_s
      return @ctx.public_send(method, name, *args) if SIMPLE_PATH.match?(name)

      helper = js_helper(:call_path) { |c| c.eval(PATH_HELPERS[:call_path]) }
      method == :call ? helper.call(name, *args) : @ctx.call_await(helper, name, *args)
    rescue Polyracer::InvalidArgumentError => e
      # polyracer refuses a path that is not a function before calling; in
      # MiniRacer that is a JS TypeError.
      raise RuntimeError, "TypeError: #{e.message.sub(/\Ainvalid argument: /, "")}"
    end

    def filename_of(options)
      options && (options[:filename] || options["filename"])
    end

    def check_bound(name, value, max)
      return if value.nil?
      raise TypeError, "#{name} must be an Integer" unless value.is_a?(Integer)
      raise ArgumentError, "bad #{name}" if value.negative? || value > max
    end

    def in_callback
      thread = Thread.current
      @in_callback[thread] = @in_callback.fetch(thread, 0) + 1
      yield
    ensure
      depth = @in_callback[thread] - 1
      depth.zero? ? @in_callback.delete(thread) : @in_callback[thread] = depth
    end

    # MiniRacer refuses an await nested in a callback (V8 does not nest
    # microtask checkpoints there); code written for it expects the error.
    def refuse_nested_await
      return unless @in_callback.key?(Thread.current)

      raise RuntimeError, "Error: nested call_await/eval_await is not supported"
    end

    def schedule_idle_gc
      return unless @idle_gc

      @last_call = Process.clock_gettime(Process::CLOCK_MONOTONIC)
      @gc_pending = true
      @gc_thread ||= Thread.new do
        loop do
          sleep @idle_gc
          idle = Process.clock_gettime(Process::CLOCK_MONOTONIC) - @last_call
          next unless @gc_pending && idle >= @idle_gc

          @gc_pending = false
          begin
            @ctx.low_memory_notification
          rescue Polyracer::Error
            break
          end
        end
      end
    end
  end
end
