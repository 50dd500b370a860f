require "polyracer"
ctx = Polyracer::Context.new(timeout: 5)
ctx.attach_async("lookup") do |done, key|
  Thread.new { sleep 0.01; done.resolve(key.upcase + ctx.eval("1 + 1").to_s) }
end
puts ctx.eval_await("(async () => (await lookup('a')) + '!')()") # A2!
ctx.dispose
