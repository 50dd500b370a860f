"""docs/examples/swift/main.swift, step for step, through uniffi's generated
Python bindings of the same library (no Swift compiler on Linux CI machines).
ci/demo-swift.sh runs it; the Swift names are in the comments."""

import asyncio
import json

from polyracer_swift import Context, ContextOptions, EvalOptions, HostFunctionError, JsValue, PolyRacerError

# let ctx = try Context(options: ContextOptions(timeout: 1.0, memoryLimit: 64 << 20))
ctx = Context(ContextOptions(timeout=1.0, memory_limit=64 << 20))

# try ctx.eval("[1, 2, 3].map((x) => x * 2)")
doubled = ctx.eval("[1, 2, 3].map((x) => x * 2)")
print("doubled:", [v[0] for v in doubled[0]])


# try ctx.expose(name: "greet") { args in .string("Hello, ...!") }
class Greet:
    def call(self, context, args):
        if not args or not args[0].is_string():
            raise HostFunctionError.Thrown("TypeError", "greet needs a name", None)
        return JsValue.STRING(f"Hello, {args[0][0]}!")


ctx.expose("greet", Greet())
print("greet:", ctx.eval("greet('Swift')")[0])

# try ctx.call("(a, b) => a + b", args: [40, 2])
print("sum:", ctx.call("(a, b) => a + b", [JsValue.INTEGER(40), JsValue.INTEGER(2)])[0])

# try ctx.eval("({x: 3, y: 4})", as: Point.self)   (Codable goes through JSON)
point = {p.key: p.value[0] for p in ctx.eval("({x: 3, y: 4})")[0]}
print("point:", json.dumps(point))

# catch PolyRacerError.Js(let exception)
try:
    ctx.eval("null.x", EvalOptions(filename="bad.js"))
except PolyRacerError.Js as e:
    print("JS error:", e.exception.name, "-", e.exception.message)

# catch PolyRacerError.Timeout
try:
    ctx.eval("while (true) {}")
except PolyRacerError.Timeout:
    print("timed out; still usable:", ctx.eval("'yes'")[0])


# try await ctx.evalAsync(...)
async def main():
    tick = await ctx.eval_async("new Promise((r) => setTimeout(() => r('tick'), 10))")
    print("async:", tick[0])


asyncio.run(main())
ctx.dispose()
