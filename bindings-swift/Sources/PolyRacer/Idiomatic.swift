// The idiomatic Swift layer over the uniffi-generated API in Generated/.
// Hand-written: Swift names (`JSValue`, `eval(_:)`, `call(_:args:)`),
// closures for host functions and module resolvers, literals, accessors and
// Codable bridging. Everything here calls the generated API; nothing touches
// the FFI directly.

import Foundation

/// A JS value: a copy (`.integer`, `.string`, `.object`, ...) or a handle to
/// a value that stays in its context (`.function`, `.promise`, ...).
public typealias JSValue = JsValue
/// A reference to a JS object, array, function, promise or symbol.
public typealias JSHandle = JsHandle
/// A JS exception: name, message, stack, the thrown value, position, cause.
public typealias JSException = JsException

// MARK: - Errors

extension PolyRacerError: CustomStringConvertible {}

extension PolyRacerError {
    /// The JS exception behind `.Js` and `.Parse`.
    public var exception: JSException? {
        switch self {
        case .Js(let exception), .Parse(let exception):
            return exception
        default:
            return nil
        }
    }
}

/// Carries a Swift error through JS: a host function's error reaches JS as a
/// JS exception and, if JS does not catch it, comes back as
/// `JSException.hostError`.
public final class SwiftErrorCause: HostCause, @unchecked Sendable {
    public let error: Error

    public init(_ error: Error) {
        self.error = error
    }

    public func describe() -> String {
        String(describing: error)
    }
}

extension JsException {
    /// The Swift error a host function threw, when it started this exception.
    public var hostError: Error? {
        (cause as? SwiftErrorCause)?.error
    }
}

extension HostFunctionError {
    /// Wraps any Swift error for JS. A `PolyRacerError.Js` from a nested call
    /// keeps its JS name and message; other errors become `Error`s whose
    /// message is the error's description and whose cause is the error.
    public static func wrapping(_ error: Error) -> HostFunctionError {
        if let e = error as? HostFunctionError {
            return e
        }
        if let e = error as? PolyRacerError, let ex = e.exception {
            return .Thrown(name: ex.name.isEmpty ? "Error" : ex.name, message: ex.message, cause: ex.cause)
        }
        return .Thrown(name: "Error", message: String(describing: error), cause: SwiftErrorCause(error))
    }

    /// A JS error of class `name` (`"TypeError"`, `"RangeError"`, ...).
    public static func js(_ name: String, _ message: String) -> HostFunctionError {
        .Thrown(name: name, message: message, cause: nil)
    }
}

// MARK: - Callback adapters

final class ClosureHostFunction: HostFunction, @unchecked Sendable {
    let body: (Context, [JSValue]) throws -> JSValue

    init(_ body: @escaping (Context, [JSValue]) throws -> JSValue) {
        self.body = body
    }

    func call(context: Context, args: [JsValue]) throws -> JsValue {
        do {
            return try body(context, args)
        } catch {
            throw HostFunctionError.wrapping(error)
        }
    }
}

final class ClosureAsyncHostFunction: AsyncHostFunction, @unchecked Sendable {
    let body: ([JSValue]) async throws -> JSValue

    init(_ body: @escaping ([JSValue]) async throws -> JSValue) {
        self.body = body
    }

    func call(context: Context, args: [JsValue], completer: Completer) {
        let body = self.body
        Task {
            do {
                completer.resolve(value: try await body(args))
            } catch {
                completer.reject(error: HostFunctionError.wrapping(error))
            }
        }
    }
}

final class ClosureModuleResolver: ModuleResolver, @unchecked Sendable {
    let body: (String, String) throws -> String

    init(_ body: @escaping (String, String) throws -> String) {
        self.body = body
    }

    func resolve(specifier: String, referrer: String) throws -> String {
        do {
            return try body(specifier, referrer)
        } catch {
            throw HostFunctionError.wrapping(error)
        }
    }
}

// MARK: - Context

extension Context {
    /// Evaluates a script and returns its completion value.
    /// - Parameters:
    ///   - filename: the script name in stack traces.
    ///   - timeout: seconds; overrides the context's default.
    ///   - awaitPromise: if the result is a promise, wait for it.
    @discardableResult
    public func eval(
        _ source: String, filename: String? = nil, timeout: TimeInterval? = nil, awaitPromise: Bool = false
    ) throws -> JSValue {
        try eval(
            source: source, options: EvalOptions(filename: filename, timeout: timeout, awaitPromise: awaitPromise))
    }

    /// Evaluates and decodes the result (through JSON) into `type`.
    public func eval<T: Decodable>(_ source: String, as type: T.Type, decoder: JSONDecoder = JSONDecoder()) throws
        -> T
    {
        try eval(source).decode(type, decoder: decoder)
    }

    /// Calls a function by dotted global path (`"JSON.stringify"`) or
    /// function expression (`"(a, b) => a + b"`).
    @discardableResult
    public func call(_ target: String, args: [JSValue] = [], timeout: TimeInterval? = nil) throws -> JSValue {
        try call(target: target, args: args, options: EvalOptions(timeout: timeout))
    }

    /// Calls a function handle.
    @discardableResult
    public func call(_ function: JSHandle, args: [JSValue] = [], timeout: TimeInterval? = nil) throws -> JSValue {
        try callFunction(function: function, args: args, options: EvalOptions(timeout: timeout))
    }

    /// Evaluates without blocking the caller; a promise result is awaited.
    public func evalAsync(_ source: String, filename: String? = nil, timeout: TimeInterval? = nil) async throws
        -> JSValue
    {
        try await evalAsync(source: source, options: EvalOptions(filename: filename, timeout: timeout))
    }

    /// Calls without blocking the caller; a promise result is awaited.
    public func callAsync(_ target: String, args: [JSValue] = [], timeout: TimeInterval? = nil) async throws
        -> JSValue
    {
        try await callAsync(target: target, args: args, options: EvalOptions(timeout: timeout))
    }

    /// `globalThis[name] = value`.
    public func setGlobal(_ name: String, _ value: JSValue) throws {
        try setGlobal(name: name, value: value)
    }

    /// Exposes a Swift closure to JS as `name` (a global or a dotted path
    /// such as `"app.log"`). It runs on the thread that called into the
    /// context. A thrown error becomes a JS exception; see
    /// `HostFunctionError.wrapping(_:)`.
    public func expose(name: String, function: @escaping ([JSValue]) throws -> JSValue) throws {
        try expose(name: name, function: ClosureHostFunction { _, args in try function(args) })
    }

    /// Like `expose(name:function:)`, also passing the calling context, for
    /// host functions that call back into JS. The context passed in does not
    /// keep the context alive, so using it creates no reference cycle (a
    /// closure capturing the `Context` itself does: the context then lives
    /// until `dispose()`).
    public func exposeWithContext(name: String, function: @escaping (Context, [JSValue]) throws -> JSValue) throws {
        try expose(name: name, function: ClosureHostFunction(function))
    }

    /// Exposes an async Swift closure: JS receives a promise settled with
    /// its result (or rejected with its error).
    public func exposeAsync(name: String, function: @escaping ([JSValue]) async throws -> JSValue) throws {
        try exposeAsync(name: name, function: ClosureAsyncHostFunction(function))
    }

    /// Compiles a script to run many times, consuming or producing a code cache.
    public func compile(
        _ source: String, filename: String? = nil, cachedData: Data? = nil, produceCache: Bool = false
    ) throws -> Script {
        try compile(
            source: source,
            options: CompileOptions(filename: filename, cachedData: cachedData, produceCache: produceCache))
    }

    /// Evaluates an ES module. `resolver(specifier, referrer)` returns the
    /// source of each import (also later dynamic `import()`s); it runs on
    /// the calling thread. Top-level await is awaited.
    public func evalModule(
        _ source: String, filename: String, timeout: TimeInterval? = nil,
        resolver: @escaping (_ specifier: String, _ referrer: String) throws -> String
    ) throws -> ModuleResult {
        try evalModule(
            source: source, filename: filename, resolver: ClosureModuleResolver(resolver),
            options: ModuleOptions(timeout: timeout))
    }

    /// True once `dispose()` was called.
    public var isDisposed: Bool { disposed() }
}

extension Script {
    /// Runs the compiled script; `timeout` in seconds.
    @discardableResult
    public func run(timeout: TimeInterval?) throws -> JSValue {
        try run(options: EvalOptions(timeout: timeout))
    }
}

// MARK: - Handles

extension JsHandle {
    /// Calls the function handle: `try f(1, "two")`.
    @discardableResult
    public func callAsFunction(_ args: JSValue...) throws -> JSValue {
        try call(args: args)
    }

    /// `obj[key]` for a string key.
    public func get(_ key: String) throws -> JSValue {
        try get(key: .string(key))
    }

    /// `arr[index]`.
    public func get(_ index: Int) throws -> JSValue {
        try get(key: .integer(Int64(index)))
    }

    /// `obj[key] = value`.
    public func set(_ key: String, _ value: JSValue) throws {
        try set(key: .string(key), value: value)
    }

    /// Waits for a promise handle without blocking the caller.
    public var value: JSValue {
        get async throws { try await awaitAsync() }
    }
}

// MARK: - JSValue construction and access

extension JsValue: ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByStringLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral
{
    public init(integerLiteral value: Int64) {
        self = .integer(value)
    }

    public init(floatLiteral value: Double) {
        self = .number(value)
    }

    public init(booleanLiteral value: Bool) {
        self = .bool(value)
    }

    public init(stringLiteral value: String) {
        self = .string(value)
    }

    public init(arrayLiteral elements: JSValue...) {
        self = .array(elements)
    }

    /// Keys keep the literal's order, as JS objects do.
    public init(dictionaryLiteral elements: (String, JSValue)...) {
        self = .object(elements.map { JsProperty(key: $0.0, value: $0.1) })
    }

    public init(_ value: Int) {
        self = .integer(Int64(value))
    }

    public init(_ value: Int64) {
        self = .integer(value)
    }

    public init(_ value: Double) {
        self = .number(value)
    }

    public init(_ value: String) {
        self = .string(value)
    }

    public init(_ value: Bool) {
        self = .bool(value)
    }

    /// A JS `Date`.
    public init(_ date: Date) {
        self = .date(date.timeIntervalSince1970 * 1000)
    }

    /// A `Uint8Array`.
    public init(_ data: Data) {
        self = .bytes(data)
    }

    /// An object with keys in the given order.
    public init(object pairs: [(String, JSValue)]) {
        self = .object(pairs.map { JsProperty(key: $0.0, value: $0.1) })
    }

    public var isUndefined: Bool {
        if case .undefined = self { return true }
        return false
    }

    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }

    public var boolValue: Bool? {
        if case .bool(let b) = self { return b }
        return nil
    }

    /// Integral values (`.integer`, or an integral `.number` within Int64).
    public var intValue: Int64? {
        switch self {
        case .integer(let i):
            return i
        case .number(let n) where n.rounded() == n && abs(n) < 9.2e18:
            return Int64(n)
        default:
            return nil
        }
    }

    /// Any number as a Double.
    public var doubleValue: Double? {
        switch self {
        case .integer(let i): return Double(i)
        case .number(let n): return n
        default: return nil
        }
    }

    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    /// A BigInt's decimal digits.
    public var bigintDigits: String? {
        if case .bigint(let s) = self { return s }
        return nil
    }

    /// A `Date` (nil for an invalid JS date).
    public var dateValue: Date? {
        if case .date(let ms) = self, ms.isFinite { return Date(timeIntervalSince1970: ms / 1000) }
        return nil
    }

    public var dataValue: Data? {
        if case .bytes(let d) = self { return d }
        return nil
    }

    /// Elements of an array or a Set copy.
    public var arrayValue: [JSValue]? {
        switch self {
        case .array(let a), .set(let a): return a
        default: return nil
        }
    }

    /// Properties of an object copy, in JS order.
    public var objectValue: [(key: String, value: JSValue)]? {
        if case .object(let props) = self { return props.map { (key: $0.key, value: $0.value) } }
        return nil
    }

    /// The handle of a function, promise, symbol, object or array handle.
    public var handle: JSHandle? {
        switch self {
        case .function(let h), .promise(let h), .symbol(let h), .objectHandle(let h), .arrayHandle(let h):
            return h
        default:
            return nil
        }
    }

    /// `value["key"]` on an object copy.
    public subscript(key: String) -> JSValue? {
        if case .object(let props) = self { return props.first { $0.key == key }?.value }
        return nil
    }

    /// `value[0]` on an array copy.
    public subscript(index: Int) -> JSValue? {
        if case .array(let a) = self, a.indices.contains(index) { return a[index] }
        return nil
    }
}

// MARK: - Codable

struct JSONKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }

    init(_ string: String) {
        stringValue = string
    }

    init?(stringValue: String) {
        self.stringValue = stringValue
    }

    init?(intValue: Int) {
        return nil
    }
}

/// JSON-shaped Codable form: null, booleans, numbers, strings, arrays and
/// objects map directly; `undefined` encodes as null, a BigInt as its digits,
/// a Date through the encoder's date strategy, bytes as `Data`, a Map as an
/// array of `[key, value]` pairs, a Set as an array, an Error as
/// `{name, message, stack}`. Handles have no Codable form (copy them with
/// `toValue()` first). Decoding sorts object keys, because `Decoder` does
/// not report the order they had.
extension JsValue: Codable {
    public init(from decoder: Decoder) throws {
        if let keyed = try? decoder.container(keyedBy: JSONKey.self) {
            var props: [JsProperty] = []
            for key in keyed.allKeys.sorted(by: { $0.stringValue < $1.stringValue }) {
                props.append(JsProperty(key: key.stringValue, value: try keyed.decode(JsValue.self, forKey: key)))
            }
            self = .object(props)
            return
        }
        if var list = try? decoder.unkeyedContainer() {
            var items: [JsValue] = []
            while !list.isAtEnd {
                items.append(try list.decode(JsValue.self))
            }
            self = .array(items)
            return
        }
        let c = try decoder.singleValueContainer()
        if c.decodeNil() {
            self = .null
        } else if let b = try? c.decode(Bool.self) {
            self = .bool(b)
        } else if let i = try? c.decode(Int64.self) {
            self = .integer(i)
        } else if let d = try? c.decode(Double.self) {
            self = .number(d)
        } else if let s = try? c.decode(String.self) {
            self = .string(s)
        } else {
            throw DecodingError.dataCorruptedError(in: c, debugDescription: "not a JSON-shaped value")
        }
    }

    public func encode(to encoder: Encoder) throws {
        switch self {
        case .undefined, .null:
            var c = encoder.singleValueContainer()
            try c.encodeNil()
        case .bool(let b):
            var c = encoder.singleValueContainer()
            try c.encode(b)
        case .integer(let i):
            var c = encoder.singleValueContainer()
            try c.encode(i)
        case .number(let n):
            var c = encoder.singleValueContainer()
            try c.encode(n)
        case .bigint(let digits):
            var c = encoder.singleValueContainer()
            try c.encode(digits)
        case .string(let s):
            var c = encoder.singleValueContainer()
            try c.encode(s)
        case .date(let ms):
            var c = encoder.singleValueContainer()
            try c.encode(Date(timeIntervalSince1970: ms / 1000))
        case .bytes(let d):
            var c = encoder.singleValueContainer()
            try c.encode(d)
        case .array(let items), .set(let items):
            var c = encoder.unkeyedContainer()
            for item in items {
                try c.encode(item)
            }
        case .object(let props):
            var c = encoder.container(keyedBy: JSONKey.self)
            for p in props {
                try c.encode(p.value, forKey: JSONKey(p.key))
            }
        case .map(let entries):
            var c = encoder.unkeyedContainer()
            for e in entries {
                var pair = c.nestedUnkeyedContainer()
                try pair.encode(e.key)
                try pair.encode(e.value)
            }
        case .error(let name, let message, let stack):
            var c = encoder.container(keyedBy: JSONKey.self)
            try c.encode(name, forKey: JSONKey("name"))
            try c.encode(message, forKey: JSONKey("message"))
            try c.encode(stack, forKey: JSONKey("stack"))
        case .function, .promise, .symbol, .objectHandle, .arrayHandle:
            throw EncodingError.invalidValue(
                self,
                EncodingError.Context(
                    codingPath: encoder.codingPath,
                    debugDescription: "a JS handle has no Codable form; copy it with toValue() first"))
        }
    }

    /// Converts any `Encodable` to a JSValue (through JSON).
    public init<T: Encodable>(encoding value: T, encoder: JSONEncoder = JSONEncoder()) throws {
        let data = try encoder.encode(value)
        self = try JSONDecoder().decode(JsValue.self, from: data)
    }

    /// Decodes this value (through JSON) into `type`.
    public func decode<T: Decodable>(_ type: T.Type = T.self, decoder: JSONDecoder = JSONDecoder()) throws -> T {
        let data = try JSONEncoder().encode(self)
        return try decoder.decode(type, from: data)
    }
}
