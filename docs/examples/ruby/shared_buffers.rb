# Large binary data without a copy (docs/ruby.md); run by test/test_docs.rb.
require "polyracer"

ctx = Polyracer::Context.new
ctx.eval("globalThis.pixels = new Uint8Array(64 << 20)") # a 64 MiB image
view = ctx.eval("pixels", share_buffers: true) # an IO::Buffer, no copy
view.set_value(:U8, 0, 255) # writes go straight into the JS buffer
puts ctx.eval("pixels[0]") # 255
ctx.dispose
# The memory stays valid while the buffer lives, after the context too.
puts "#{view.size} #{view.get_value(:U8, 0)}" # 67108864 255
