# frozen_string_literal: true

module Polyracer
  # Base class of every error polyracer raises.
  class Error < StandardError; end

  # What {JSError} and {ParseError} know about the JS exception.
  module JSErrorDetails
    # @return [String] the JS error's `name` (`"TypeError"`, ...); empty when
    #   a non-Error value was thrown
    def js_name
      @js_name || ""
    end

    # @return [String] the JS stack (`"Error: boom\n    at f (app.js:1:7)"`)
    def js_stack
      @js_stack || ""
    end

    # @return [String] the JS error's message (the same as `#message`)
    def js_message
      message
    end

    # @return [Object] the thrown JS value, converted (an Error object becomes
    #   a JSError instance, a thrown string stays a String)
    attr_reader :value

    # @return [String, nil] script name where the exception was raised
    attr_reader :filename

    # @return [Integer, nil] 1-based line where the exception was raised
    attr_reader :line

    # @return [Integer, nil] 1-based column where the exception was raised
    attr_reader :column

    # @return [Exception, nil] the Ruby exception an attached callable
    #   raised, when the JS exception is the one it became (not caught and
    #   replaced in JS); it is also the `#cause`
    attr_reader :host_exception
  end

  # Raised for an uncaught JavaScript exception: `#message` is the JS
  # message, {JSErrorDetails#js_name} its name. The JS frames are at the top
  # of `#backtrace`, followed by the Ruby frames that called in. A Ruby
  # exception raised by an attached callable and not caught in JS is the
  # `#cause`.
  class JSError < Error
    include JSErrorDetails
  end

  # A SyntaxError raised while compiling the source.
  class ParseError < Error
    include JSErrorDetails
  end

  # The call ran longer than its timeout and was stopped; the context stays
  # usable.
  class TimeoutError < Error; end

  # The running JS was stopped with {Context#terminate} (or by an interrupt).
  class TerminatedError < Error; end

  # The context reached its heap limit; the process survives.
  class OutOfMemoryError < Error; end

  # A value could not be converted between Ruby and JavaScript (unsupported
  # type, cycle, nesting too deep, Invalid Date...).
  class ConversionError < Error; end

  # The context (or script) was disposed, or was created before fork().
  class DisposedError < Error; end

  # An argument polyracer refused (bad global name, flags after start...).
  class InvalidArgumentError < Error; end
end
