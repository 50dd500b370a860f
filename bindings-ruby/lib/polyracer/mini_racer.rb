# frozen_string_literal: true

require "polyracer"

# The MiniRacer API on top of polyracer. Switch with one line:
#
#   require "polyracer/mini_racer"   # was: require "mini_racer"
#
# Written from MiniRacer's public documentation. Differences (see
# docs/ruby.md):
# - timeouts and `ensure_gc_after_idle` are milliseconds, as in MiniRacer;
#   `max_memory` becomes the V8 heap limit of the context;
# - `isolate:` and `marshal_stack_depth:` are accepted and ignored (every
#   context has its own isolate; nesting is limited to 2000 levels);
# - JS exceptions raise `MiniRacer::RuntimeError` with the message
#   `"Name: message"`, which is also a `Polyracer::JSError`-like error
#   (`#js_name`, `#js_stack`, `#cause`);
# - functions come back as `MiniRacer::JavaScriptFunction`, which can be
#   called (`#call`) as well as printed.
module MiniRacer
  # Base of every MiniRacer error.
  class Error < ::StandardError; end
  # Errors raised while evaluating JavaScript.
  class EvalError < Error; end
  # The source did not compile.
  class ParseError < EvalError; end
  # The script was stopped (timeout or {Context#stop}).
  class ScriptTerminatedError < EvalError; end
  # The context reached `max_memory`.
  class V8OutOfMemoryError < EvalError; end
  # A value could not be converted.
  class ScriptError < EvalError; end
  # The context was disposed.
  class ContextDisposedError < Error; end
  # A snapshot could not be created or loaded.
  class SnapshotError < Error; end
  # {Platform.set_flags!} after V8 started.
  class PlatformAlreadyInitialized < Error; end

  # An uncaught JavaScript exception; its message is `"Name: message"` and
  # its backtrace starts with the JS frames.
  class RuntimeError < EvalError
    include Polyracer::JSErrorDetails
  end

  # Binary data: a JS Uint8Array. Polyracer also converts binary (ASCII-8BIT)
  # Strings both ways; this wrapper exists for code written for MiniRacer.
  class Binary
    # @return [String] the bytes (ASCII-8BIT)
    attr_reader :data

    # @param data [String]
    def initialize(data)
      @data = data.b
    end
  end

  # A JS function returned to Ruby.
  class JavaScriptFunction
    # @!visibility private
    def initialize(handle)
      @handle = handle
    end

    # Calls the function.
    # @return [Object]
    def call(*args)
      MiniRacer.translate { MiniRacer.from_js(@handle.call(*args.map { |a| MiniRacer.to_js(a) })) }
    end

    # @return [String]
    def to_s
      "JavaScript Function"
    end
    alias inspect to_s
  end

  # V8 platform settings.
  module Platform
    class << self
      # Sets V8 flags; only before the first context is created.
      #   MiniRacer::Platform.set_flags!(:noconcurrent_recompilation, max_lazy: true)
      # @return [void]
      # @raise [PlatformAlreadyInitialized]
      def set_flags!(*args, **kwargs)
        flags = args.map { |a| "--#{a}" }
        kwargs.each do |k, v|
          flags << (v == true ? "--#{k}" : v == false ? "--no#{k}" : "--#{k}=#{v}")
        end
        Polyracer.configure(flags: flags)
      rescue Polyracer::InvalidArgumentError => e
        raise PlatformAlreadyInitialized, e.message
      end
    end
  end

  # A V8 startup snapshot.
  class Snapshot
    # @return [Polyracer::Snapshot]
    attr_reader :polyracer_snapshot

    # @param source [String] JS run before the heap is captured
    def initialize(source = "")
      @polyracer_snapshot = Polyracer::Snapshot.new(source)
    rescue Polyracer::Error => e
      raise SnapshotError, e.message
    end

    # @param bytes [String] from {#dump}
    # @return [Snapshot]
    def self.load(bytes)
      snap = allocate
      snap.instance_variable_set(:@polyracer_snapshot, Polyracer::Snapshot.load(bytes))
      snap
    rescue Polyracer::Error => e
      raise SnapshotError, e.message
    end

    # Compiles the snapshot's functions by running `src` in a throwaway context.
    # @return [self]
    def warmup!(src)
      @polyracer_snapshot.warmup!(src)
      self
    rescue Polyracer::Error => e
      raise SnapshotError, e.message
    end

    # @return [String] binary
    def dump
      @polyracer_snapshot.dump
    end

    # @return [Integer] bytes
    def size
      dump.bytesize
    end
  end

  # A JavaScript context with MiniRacer's API.
  class Context
    # @param timeout [Integer, nil] milliseconds
    # @param max_memory [Integer, nil] heap limit in bytes
    # @param snapshot [Snapshot, nil]
    # @param ensure_gc_after_idle [Integer, nil] milliseconds of idleness
    #   after which a full GC runs
    def initialize(timeout: nil, max_memory: nil, snapshot: nil, ensure_gc_after_idle: nil, isolate: nil,
                   marshal_stack_depth: nil)
      _ = [isolate, marshal_stack_depth]
      @timeout = timeout
      @ctx = MiniRacer.translate do
        Polyracer::Context.new(timeout: timeout && timeout / 1000.0, memory_limit: max_memory,
                               snapshot: snapshot&.polyracer_snapshot)
      end
      @functions = {}
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
      filename = options && (options[:filename] || options["filename"])
      run { @ctx.eval(str, filename: filename) }
    end

    # Evaluates and waits for the resulting promise.
    # @return [Object]
    def eval_await(str, options = nil)
      filename = options && (options[:filename] || options["filename"])
      run { @ctx.eval_await(str, filename: filename) }
    end

    # Calls a JS function by name (a dotted path).
    # @return [Object]
    def call(function_name, *arguments)
      run { @ctx.call(function_name, *arguments.map { |a| MiniRacer.to_js(a) }) }
    end

    # Attaches a Ruby callable as a JS function.
    # @param name [String] a global name or dotted path
    # @param callback [#call]
    # @return [void]
    def attach(name, callback)
      @functions[name.to_s] = callback
      wrapped = lambda do |*args|
        MiniRacer.to_js(callback.call(*args.map { |a| MiniRacer.from_js(a) }))
      end
      MiniRacer.translate { @ctx.attach(name, wrapped) }
    end

    # Evaluates a file's content.
    # @return [Object]
    def load(filename)
      eval(File.read(filename), filename: filename)
    end

    # Stops the running script (from another thread); it raises
    # {ScriptTerminatedError}.
    # @return [void]
    def stop
      @ctx.terminate
    end

    # @return [void]
    def dispose
      @gc_thread&.kill
      @ctx.dispose
    end

    # @return [Hash{Symbol => Integer}]
    def heap_stats
      MiniRacer.translate { @ctx.heap_stats }
    end

    # @return [void]
    def low_memory_notification
      MiniRacer.translate { @ctx.low_memory_notification }
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
          MiniRacer.translate { @ctx.write_heap_snapshot(f.path) }
          file_or_io.write(File.binread(f.path))
        end
      else
        MiniRacer.translate { @ctx.write_heap_snapshot(file_or_io) }
      end
    end

    private

    def run
      result = MiniRacer.translate { MiniRacer.from_js(yield) }
      schedule_idle_gc
      result
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

  class << self
    # @!visibility private
    # Maps polyracer errors to MiniRacer's classes.
    def translate
      yield
    rescue Polyracer::ParseError => e
      raise rewrap(ParseError, e, "#{e.js_name}: #{e.message}"), cause: e.cause
    rescue Polyracer::JSError => e
      raise rewrap(RuntimeError, e, e.js_name.empty? ? e.message : "#{e.js_name}: #{e.message}"), cause: e.cause
    rescue Polyracer::TimeoutError, Polyracer::TerminatedError
      raise ScriptTerminatedError, "JavaScript was terminated (either by timeout or explicitly)"
    rescue Polyracer::OutOfMemoryError => e
      raise V8OutOfMemoryError, e.message
    rescue Polyracer::DisposedError => e
      raise ContextDisposedError, e.message
    rescue Polyracer::ConversionError => e
      raise ScriptError, e.message
    rescue Polyracer::InvalidArgumentError => e
      raise ArgumentError, e.message
    end

    # @!visibility private
    def rewrap(klass, err, message)
      out = klass.new(message)
      %i[@js_name @js_stack @value @filename @line @column].each do |iv|
        out.instance_variable_set(iv, err.instance_variable_get(iv))
      end
      out.set_backtrace(err.backtrace)
      out
    end

    # @!visibility private
    def from_js(value)
      case value
      when Polyracer::JSFunction then JavaScriptFunction.new(value)
      when Array then value.map { |v| from_js(v) }
      when Hash then value.transform_values { |v| from_js(v) }
      else value
      end
    end

    # @!visibility private
    def to_js(value)
      case value
      when Binary then value.data
      when Array then value.map { |v| to_js(v) }
      when Hash then value.transform_values { |v| to_js(v) }
      else value
      end
    end
  end
end
