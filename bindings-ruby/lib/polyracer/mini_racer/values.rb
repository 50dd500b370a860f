# frozen_string_literal: true

require "date"

module MiniRacer
  # MiniRacer's value rules on top of polyracer's conversion. MiniRacer
  # copies values with V8's structured clone, so:
  # - every whole number is an Integer (`2**62`, `1e21`), not only safe ones;
  # - a `Set` becomes an Array, a `Symbol` its description, a promise `{}`;
  # - functions inside objects are left out (a function result is a
  #   {JavaScriptFunction});
  # - a proxy, an iterator or a weak collection becomes a copy of what it
  #   holds (iterators and `WeakMap`s as flat `[k1, v1, k2, v2]` arrays);
  # - a JS Error object received as a value is a {ScriptError};
  # - going in, Hash keys become strings, `DateTime` and anything with
  #   `#to_time` a Date, and objects JS cannot hold the string
  #   `"Undefined Conversion"`.
  module Values
    # MiniRacer refuses BigInts of this many bytes or more, both ways.
    BIGINT_MAX_BYTES = 16 * 1024 * 1024
    BIGINT_MAX_BITS = BIGINT_MAX_BYTES * 8
    # Stands for a function inside an object: left out of the copy.
    OMIT = Object.new.freeze
    private_constant :OMIT

    # Small JS functions the conversion calls for the rare kinds; compiled
    # once per context, held as handles (no globals).
    HELPERS = {
      # A proxy's own enumerable properties read through its traps, as
      # MiniRacer's fallback copy does.
      proxy_copy: <<~JS,
        (p) => {
          const o = Array.isArray(p) ? [] : {};
          const pds = Object.getOwnPropertyDescriptors(p);
          for (const k of Object.keys(pds)) {
            const d = pds[k];
            if (d.enumerable) o[k] = d.get ? Function.prototype.call.call(d.get, p) : d.value;
          }
          return o;
        }
      JS
      description: "(s) => s.description"
    }.freeze
    private_constant :HELPERS

    class << self
      # @param value [Object] polyracer's conversion of a JS value
      # @param ctx [Context] where its handles live
      # @return [Object] MiniRacer's
      def from_js(value, ctx, top: true)
        case value
        when String, true, false, nil then value
        when Integer
          raise RuntimeError, "bigint too big" if value.bit_length >= BIGINT_MAX_BITS

          value
        when Float then value.finite? && value == value.truncate ? value.to_i : value
        when Array then value.map { |v| item(v, ctx) }
        when Hash then entries(value, ctx)
        when Set then value.map { |v| item(v, ctx) }
        when Polyracer::JSFunction then top ? JavaScriptFunction.new(value, ctx) : OMIT
        when Polyracer::JSPromise then {}
        when Polyracer::JSObject then object(value, ctx)
        when Polyracer::JSError then Errors.script_error(value)
        else value
        end
      end

      # @param value [Object] a Ruby value for JS
      # @param seen [Hash] containers already converted, by identity, so the
      #   same Array or Hash twice stays one JS object
      # @return [Object] what polyracer converts as MiniRacer would
      def to_js(value, seen = {}.compare_by_identity)
        case value
        when String, Symbol, true, false, nil, Float then value
        when Integer
          raise InternalError, "bigint too big" if value.bit_length >= BIGINT_MAX_BITS

          value
        when Binary then value.data
        when Array, Hash
          return seen[value] if seen.key?(value)

          # While it is converted, a cycle back to it gets the original,
          # which core's walk reports as a cyclic reference.
          seen[value] = value
          seen[value] = if value.is_a?(Array)
                          value.map { |v| to_js(v, seen) }
                        else
                          value.to_h { |k, v| [k.is_a?(String) ? k : k.to_s, to_js(v, seen)] }
                        end
        # ActiveSupport's TimeWithZone says it is a Time; only a Time is one.
        when Time then value.instance_of?(Time) ? value : value.to_time
        when DateTime then value.to_time
        when Date then "Undefined Conversion"
        else
          value.respond_to?(:to_time) ? value.to_time : value
        end
      end

      private

      def item(value, ctx)
        v = from_js(value, ctx, top: false)
        OMIT.equal?(v) ? nil : v
      end

      def entries(hash, ctx)
        out = {}
        hash.each do |k, v|
          v = from_js(v, ctx, top: false)
          out[k] = v unless OMIT.equal?(v)
        end
        out
      end

      # A handle that is neither a function nor a promise: a symbol, a
      # proxy, an iterator or a weak collection.
      def object(handle, ctx)
        return helper(ctx, :description).call(handle) if handle.kind == :symbol

        items, = handle.preview_entries
        from_js(items, ctx, top: false)
      rescue Polyracer::InvalidArgumentError
        # Not a collection: a proxy.
        from_js(helper(ctx, :proxy_copy).call(handle), ctx, top: false)
      end

      def helper(ctx, name)
        ctx.js_helper(name) { |c| c.eval(HELPERS.fetch(name)) }
      end
    end
  end
end
