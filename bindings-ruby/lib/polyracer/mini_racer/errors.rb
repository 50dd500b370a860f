# frozen_string_literal: true

module MiniRacer
  # Base of every MiniRacer error.
  class Error < ::StandardError; end
  # The context was disposed.
  class ContextDisposedError < Error; end
  # {Platform.set_flags!} after V8 started.
  class PlatformAlreadyInitialized < Error; end
  # Errors raised while evaluating JavaScript.
  class EvalError < Error; end
  # The source did not compile; the message ends with `at file:line:column`
  # (column from 0, as MiniRacer reports it).
  class ParseError < EvalError; end
  # The script was stopped (timeout or {Context#stop}).
  class ScriptTerminatedError < EvalError; end
  # The context reached `max_memory`.
  class V8OutOfMemoryError < EvalError; end
  # A Ruby value could not be handed to JavaScript (an Integer past
  # MiniRacer's BigInt bound).
  class InternalError < EvalError; end

  # MiniRacer's errors carry the JS stack in their message: the first line is
  # the message, the other lines become backtrace entries
  # (`"JavaScript at f (app.js:1:7)"`) in front of the Ruby frames.
  module JSFrames
    # @param message [String] the JS error text, then its stack lines
    def initialize(message = nil)
      text, *frames = message.to_s.split("\n")
      @js_frames = frames.map { |f| "JavaScript #{f.strip}" }
      super(text)
    end

    # @return [Array<String>, nil] the JS frames, then the Ruby ones
    def backtrace
      ruby = super
      ruby && @js_frames + ruby
    end
  end

  # An uncaught JavaScript exception. Its message is the first line of the
  # JS stack (`"TypeError: x is not a function"`); it also answers
  # {Polyracer::JSErrorDetails} (`#js_name`, `#js_stack`, `#value`...).
  class RuntimeError < EvalError
    include JSFrames
    include Polyracer::JSErrorDetails
  end

  # A JS Error object returned as a value (not raised): its message is the
  # JS message, its backtrace the JS stack.
  class ScriptError < EvalError
    include JSFrames

    # @return [Array<String>] the JS frames (the error was never raised)
    def backtrace
      super || @js_frames
    end
  end

  # A snapshot could not be created or loaded.
  class SnapshotError < Error
    include JSFrames
  end

  # How polyracer's errors become MiniRacer's (see {.translate}).
  module Errors
    # MiniRacer's message for any termination, timeout or {Context#stop}.
    TERMINATED = "JavaScript was terminated (either by timeout or explicitly)"

    class << self
      # Runs the block, raising MiniRacer's error classes for polyracer's.
      # A Ruby exception raised by an attached callable and not caught in JS
      # is raised again as itself, as MiniRacer does.
      def translate
        yield
      rescue Polyracer::ParseError => e
        raise ParseError, "#{e.js_name}: #{e.message} at #{e.filename}:#{e.line}:#{(e.column || 1) - 1}"
      rescue Polyracer::JSError => e
        host = e.host_exception
        raise host, cause: host.cause if host

        raise runtime_error(e)
      rescue Polyracer::TimeoutError, Polyracer::TerminatedError
        raise ScriptTerminatedError, TERMINATED
      rescue Polyracer::OutOfMemoryError => e
        raise V8OutOfMemoryError, e.message
      rescue Polyracer::DisposedError => e
        raise ContextDisposedError, e.message
      rescue Polyracer::ConversionError => e
        # MiniRacer reads an Invalid Date with Time.at, which raises RangeError.
        raise ::RangeError, "invalid Date" if e.message.include?("invalid Date")

        raise ScriptError, e.message
      rescue Polyracer::InvalidArgumentError => e
        raise ArgumentError, e.message
      end

      # @param e [Polyracer::JSError]
      # @return [RuntimeError] with the JS details of `e`
      def runtime_error(e)
        text = e.js_stack.empty? ? js_text(e) : e.js_stack
        err = RuntimeError.new(text)
        %i[@js_name @js_stack @value @filename @line @column].each do |iv|
          err.instance_variable_set(iv, e.instance_variable_get(iv))
        end
        err
      end

      # @param e [Polyracer::JSError] a JS Error object received as a value
      # @return [ScriptError]
      def script_error(e)
        ScriptError.new(e.js_stack.empty? ? e.message : "#{e.message}\n#{e.js_stack}")
      end

      private

      def js_text(e)
        e.js_name.empty? ? e.message : "#{e.js_name}: #{e.message}"
      end
    end
  end
end
