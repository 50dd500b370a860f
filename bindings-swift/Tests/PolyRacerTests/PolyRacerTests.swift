// XCTest cases for the Swift API. They run on macOS CI (`swift test` after
// ci/swift-xcframework.sh); the same behaviour is tested on Linux through
// uniffi's Python bindings in bindings-swift/tests-ffi.
import Foundation
import XCTest

import PolyRacer

final class PolyRacerTests: XCTestCase {
    var ctx: Context!

    override func setUpWithError() throws {
        ctx = try Context(options: nil)
    }

    override func tearDown() {
        ctx?.dispose()
        ctx = nil
    }

    // MARK: values

    func testPrimitives() throws {
        XCTAssertEqual(try ctx.eval("1 + 1"), .integer(2))
        XCTAssertEqual(try ctx.eval("1.5"), .number(1.5))
        XCTAssertEqual(try ctx.eval("'héllo ✓'"), .string("héllo ✓"))
        XCTAssertEqual(try ctx.eval("true"), .bool(true))
        XCTAssertEqual(try ctx.eval("null"), .null)
        XCTAssertEqual(try ctx.eval("undefined"), .undefined)
        XCTAssertEqual(try ctx.eval("2n ** 100n"), .bigint("1267650600228229401496703205376"))
        XCTAssertEqual(try ctx.eval("new Date(86400000)").dateValue, Date(timeIntervalSince1970: 86400))
        XCTAssertEqual(try ctx.eval("new Uint8Array([1, 2, 255])"), .bytes(Data([1, 2, 255])))
    }

    func testContainersKeepOrder() throws {
        let v = try ctx.eval("({b: 1, a: [1, 'x'], m: new Map([[1, 'one']]), s: new Set([3, 1])})")
        XCTAssertEqual(v.objectValue?.map { $0.key }, ["b", "a", "m", "s"])
        XCTAssertEqual(v["a"], JSValue.array([1, "x"]))
        XCTAssertEqual(v["m"], JSValue.map([JsMapEntry(key: 1, value: "one")]))
        XCTAssertEqual(v["s"], JSValue.set([3, 1]))
    }

    func testHandlesForFunctionsPromisesSymbols() throws {
        guard case .function(let f) = try ctx.eval("(a) => a * 2") else { return XCTFail("not a function") }
        XCTAssertEqual(try f(21), .integer(42))
        guard case .promise = try ctx.eval("new Promise(() => {})") else { return XCTFail("not a promise") }
        guard case .symbol(let s) = try ctx.eval("Symbol('tag')") else { return XCTFail("not a symbol") }
        XCTAssertEqual(try s.toJsString(), "tag")
    }

    func testRoundTripHostToJS() throws {
        let values: [JSValue] = [
            .undefined, .null, true, 7, 0.25, .bigint("123456789012345678901234567890"), "s",
            JSValue(Date(timeIntervalSince1970: 1)), JSValue(Data([0, 1])), [1, "two", [3]],
            ["z": 1, "a": ["b": .null]], .map([JsMapEntry(key: 1, value: "one")]), .set([1, "1"]),
        ]
        for v in values {
            XCTAssertEqual(try ctx.call("(x) => x", args: [v]), v)
        }
        XCTAssertEqual(try ctx.call("(o) => Object.keys(o).join()", args: [["z": 1, "a": 2, "m": 3]]), "z,a,m")
        XCTAssertEqual(try ctx.call("(x) => typeof x", args: [.integer(1 << 60)]), "bigint")
    }

    func testBadBigIntDigits() {
        XCTAssertThrowsError(try ctx.call("(x) => x", args: [.bigint("12abc")])) { error in
            guard case PolyRacerError.Conversion = error else { return XCTFail("\(error)") }
        }
    }

    func testCodableBridging() throws {
        struct Point: Codable, Equatable {
            let x: Int
            let label: String
        }
        XCTAssertEqual(try ctx.eval("({x: 3, label: 'p'})", as: Point.self), Point(x: 3, label: "p"))
        let encoded = try JSValue(encoding: Point(x: 5, label: "q"))
        XCTAssertEqual(try ctx.call("(p) => p.label + p.x", args: [encoded]), "q5")
        XCTAssertThrowsError(try JSONEncoder().encode(try ctx.eval("() => 1"))) { error in
            guard case EncodingError.invalidValue(_, let context) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(context.debugDescription.contains("no Codable form"), context.debugDescription)
        }
    }

    // MARK: calls and host functions

    func testCallPathsAndHandles() throws {
        XCTAssertEqual(try ctx.call("Math.max", args: [3, 9, 4]), .integer(9))
        guard let f = try ctx.eval("(n) => n * 2").handle else { return XCTFail("no handle") }
        XCTAssertEqual(try ctx.call(f, args: [21]), .integer(42))
        try ctx.setGlobal("config", ["level": 3])
        XCTAssertEqual(try ctx.eval("config.level"), .integer(3))
    }

    func testExposeAndNesting() throws {
        try ctx.expose(name: "add") { args in
            JSValue(args.compactMap(\.intValue).reduce(0, +))
        }
        XCTAssertEqual(try ctx.eval("add(1, 2, 3)"), .integer(6))
        try ctx.exposeWithContext(name: "down") { context, args in
            let n = args[0].intValue!
            if n == 0 { return "bottom" }
            return try context.eval("down(\(n - 1)) + '<\(n)'")
        }
        XCTAssertEqual(try ctx.eval("down(3)"), "bottom<1<2<3")
    }

    struct Oops: Error, Equatable {
        let code: Int
    }

    func testHostErrorsReachJSAndComeBackAsCause() throws {
        try ctx.expose(name: "typed") { _ in throw HostFunctionError.js("TypeError", "wrong type") }
        XCTAssertEqual(try ctx.eval("try { typed() } catch (e) { e instanceof TypeError && e.message }"), "wrong type")
        try ctx.expose(name: "oops") { _ in throw Oops(code: 7) }
        XCTAssertThrowsError(try ctx.eval("oops()")) { error in
            guard case PolyRacerError.Js(let ex) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(ex.hostError as? Oops, Oops(code: 7))
        }
    }

    func testAsyncHostFunction() throws {
        try ctx.exposeAsync(name: "later") { args in
            try await Task.sleep(nanoseconds: 10_000_000)
            return JSValue(args[0].intValue! * 10)
        }
        XCTAssertEqual(try ctx.eval("later(4)", awaitPromise: true), .integer(40))
    }

    // MARK: errors and limits

    func testParseError() {
        XCTAssertThrowsError(try ctx.eval("let x = ;", filename: "bad.js")) { error in
            guard case PolyRacerError.Parse(let ex) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(ex.name, "SyntaxError")
            XCTAssertEqual(ex.filename, "bad.js")
            XCTAssertEqual(ex.line, 1)
        }
    }

    func testJSErrorAndNonErrorThrow() {
        XCTAssertThrowsError(try ctx.eval("function f() { null.x }\nf()", filename: "t.js")) { error in
            guard case PolyRacerError.Js(let ex) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(ex.name, "TypeError")
            XCTAssertTrue(ex.stack.contains("t.js:1:"))
        }
        XCTAssertThrowsError(try ctx.eval("throw 'plain'")) { error in
            XCTAssertEqual((error as? PolyRacerError)?.exception?.message, "plain")
            XCTAssertEqual((error as? PolyRacerError)?.exception?.name, "")
        }
    }

    func testTimeoutAndContextSurvives() throws {
        let c = try Context(options: ContextOptions(timeout: 0.2))
        defer { c.dispose() }
        XCTAssertThrowsError(try c.eval("while (true) {}")) { error in
            guard case PolyRacerError.Timeout = error else { return XCTFail("\(error)") }
        }
        XCTAssertEqual(try c.eval("'alive'"), "alive")
    }

    func testTerminateFromAnotherThread() throws {
        // terminate() stops only the JS running at that moment (it is not
        // remembered for the next call), so one call made before the eval
        // starts would be lost on a loaded machine: keep calling it until the
        // eval has returned. The eval's 30 s timeout turns a regression into
        // a Timeout failure instead of a hang.
        let c = ctx!
        let done = DispatchSemaphore(value: 0)
        let terminator = Thread {
            while done.wait(timeout: .now() + 0.01) == .timedOut {
                c.terminate()
            }
        }
        terminator.start()
        XCTAssertThrowsError(try ctx.eval("while (true) {}", timeout: 30)) { error in
            guard case PolyRacerError.Terminated = error else { return XCTFail("\(error)") }
        }
        done.signal()
        XCTAssertEqual(try ctx.eval("1"), .integer(1))
    }

    func testMemoryBomb() throws {
        let c = try Context(options: ContextOptions(memoryLimit: 32 << 20))
        defer { c.dispose() }
        XCTAssertThrowsError(try c.eval("const a = []; while (true) a.push(new Array(1e5).fill(0))")) { error in
            guard case PolyRacerError.OutOfMemory = error else { return XCTFail("\(error)") }
        }
        XCTAssertEqual(try c.eval("[1, 2].length"), .integer(2))
    }

    func testUseAfterDispose() throws {
        let c = try Context(options: nil)
        c.dispose()
        c.dispose()
        XCTAssertTrue(c.isDisposed)
        XCTAssertThrowsError(try c.eval("1")) { error in
            guard case PolyRacerError.Disposed = error else { return XCTFail("\(error)") }
        }
    }

    // MARK: async

    func testEvalAsync() async throws {
        let v = try await ctx.evalAsync("new Promise((r) => setTimeout(() => r('tick'), 10))")
        XCTAssertEqual(v, "tick")
        do {
            _ = try await ctx.evalAsync("Promise.reject(new TypeError('no'))")
            XCTFail("no error")
        } catch PolyRacerError.Js(let ex) {
            XCTAssertEqual(ex.name, "TypeError")
        }
    }

    func testAwaitPromiseHandle() async throws {
        guard let p = try ctx.eval("new Promise((r) => setTimeout(() => r(5), 10))").handle else {
            return XCTFail("no handle")
        }
        let v = try await p.value
        XCTAssertEqual(v, .integer(5))
    }

    // MARK: heap, scripts, snapshots, modules

    func testHeapStats() throws {
        let s = try ctx.heapStats()
        XCTAssertGreaterThan(s.usedHeapSize, 0)
        XCTAssertLessThanOrEqual(s.usedHeapSize, s.totalHeapSize)
    }

    func testScriptsAndCodeCache() throws {
        let src = "function fib(n) { return n < 2 ? n : fib(n - 1) + fib(n - 2) } fib(15)"
        let made = try ctx.compile(src, produceCache: true)
        XCTAssertEqual(try made.run(), .integer(610))
        let cache = try XCTUnwrap(made.cachedData())
        let other = try Context(options: nil)
        defer { other.dispose() }
        let used = try other.compile(src, cachedData: cache)
        XCTAssertFalse(used.cacheRejected())
        XCTAssertEqual(try used.run(), .integer(610))
        used.dispose()
        XCTAssertThrowsError(try used.run()) { error in
            guard case PolyRacerError.Disposed(let message) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(message.contains("disposed"), message)
        }
    }

    func testSnapshots() throws {
        let snap = try Snapshot.create(source: "globalThis.answer = 42")
        let loaded = try Snapshot.load(bytes: snap.dump())
        let c = try Context(options: ContextOptions(snapshot: loaded))
        defer { c.dispose() }
        XCTAssertEqual(try c.eval("answer"), .integer(42))
        XCTAssertThrowsError(try Snapshot.load(bytes: Data("not a snapshot".utf8))) { error in
            guard case PolyRacerError.InvalidArgument = error else { return XCTFail("\(error)") }
        }
    }

    func testModules() throws {
        let modules = ["lib/math.js": "export const twice = (x) => x * 2"]
        let m = try ctx.evalModule(
            "import { twice } from './lib/math.js'; export const four = twice(2)", filename: "main.js"
        ) { specifier, referrer in
            let name = resolveSpecifier(specifier: specifier, referrer: referrer)
            guard let source = modules[name] else { throw HostFunctionError.js("Error", "no module \(name)") }
            return source
        }
        XCTAssertEqual(m.namespace["four"], JSValue.integer(4))
        XCTAssertEqual(try m.handle.get("four"), .integer(4))
    }

    func testEngineInfo() {
        XCTAssertEqual(v8Version().split(separator: ".").count, 4)
    }
}
