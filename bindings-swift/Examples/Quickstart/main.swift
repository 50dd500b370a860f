// The Swift quickstart (docs/examples/swift/main.swift links here).
// Run on macOS: `swift run PolyRacerQuickstart`.
import Foundation
import PolyRacer

// A timeout (seconds) and a heap limit (bytes) for every call on this context.
let ctx = try Context(options: ContextOptions(timeout: 1.0, memoryLimit: 64 << 20))

// Results come back as the `JSValue` enum.
let doubled = try ctx.eval("[1, 2, 3].map((x) => x * 2)")
print("doubled:", doubled.arrayValue!.compactMap(\.intValue))

// Swift closures callable from JS; they run on the calling thread.
try ctx.expose(name: "greet") { args in
    .string("Hello, \(args.first?.stringValue ?? "stranger")!")
}
print("greet:", try ctx.eval("greet('Swift')").stringValue!)

// Arguments are Swift literals.
let sum = try ctx.call("(a, b) => a + b", args: [40, 2])
print("sum:", sum.intValue!)

// Codable bridging.
struct Point: Codable {
    let x: Int
    let y: Int
}
let point = try ctx.eval("({x: 3, y: 4})", as: Point.self)
print("point:", point.x, point.y)

// Errors are typed, with the JS name, message and stack.
do {
    try ctx.eval("null.x", filename: "bad.js")
} catch PolyRacerError.Js(let exception) {
    print("JS error:", exception.name, "-", exception.message)
}

// Runaway code stops at the timeout; the context stays usable.
do {
    try ctx.eval("while (true) {}")
} catch PolyRacerError.Timeout {
    print("timed out; still usable:", try ctx.eval("'yes'").stringValue!)
}

// Promises are awaited with Swift concurrency.
let tick = try await ctx.evalAsync("new Promise((r) => setTimeout(() => r('tick'), 10))")
print("async:", tick.stringValue!)

// Frees the isolate now (dropping the last reference would too).
ctx.dispose()
