// The language-neutral cases in conformance/cases (conformance/README.md),
// through the Swift API, checked as every other binding's runner checks
// them: the exact error kind, full equality of values (types, order), and
// exactly as many cases as conformance/count.json pins.
import Foundation
import XCTest

import PolyRacer

final class ConformanceTests: XCTestCase {
    /// conformance/ at the repository root, found from this file's path
    /// (bindings-swift/Tests/PolyRacerTests/ConformanceTests.swift).
    static let conformance = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()  // PolyRacerTests
        .deletingLastPathComponent()  // Tests
        .deletingLastPathComponent()  // bindings-swift
        .deletingLastPathComponent()  // the repository
        .appendingPathComponent("conformance")

    func testEveryCase() throws {
        let dir = Self.conformance.appendingPathComponent("cases")
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path)
            .filter { $0.hasSuffix(".json") }
            .sorted()
        var count: Int64 = 0
        var names = Set<String>()
        var failures: [String] = []
        for file in files {
            let parsed = try CaseJSONParser.parse(Data(contentsOf: dir.appendingPathComponent(file)))
            guard case .array(let cases) = parsed else {
                XCTFail("\(file) is not a JSON array")
                continue
            }
            for c in cases {
                count += 1
                let name = c["name"]?.stringValue ?? "(unnamed)"
                XCTAssertTrue(names.insert(name).inserted, "two cases are named \(name)")
                if let failure = runCase(c) {
                    failures.append("\(file): \(name): \(failure)")
                }
            }
        }
        let pinned = try CaseJSONParser.parse(Data(contentsOf: Self.conformance.appendingPathComponent("count.json")))
        XCTAssertEqual(
            count, pinned["count"]?.integerValue,
            "conformance/cases holds \(count) cases; conformance/count.json says \(String(describing: pinned["count"]))")
        XCTAssertTrue(
            failures.isEmpty, "\(failures.count) of \(count) cases failed:\n" + failures.joined(separator: "\n"))
    }
}

// MARK: - Running one case

/// Runs one case; nil when it passed, otherwise what went wrong.
private func runCase(_ c: CaseJSON) -> String? {
    let expect = c["expect"] ?? .null
    var options = ContextOptions()
    if let ms = c["timeout_ms"]?.doubleValue {
        options.timeout = ms / 1000
    }
    if let limit = c["memory_limit"]?.doubleValue {
        guard let bytes = UInt64(exactly: limit) else {
            // memoryLimit is a UInt64: Swift code cannot pass this value at
            // all, which is this API's way of refusing it.
            return expect["error"]?.stringValue == "InvalidArgument"
                ? nil : "memory_limit \(limit) cannot be passed as a UInt64"
        }
        options.memoryLimit = bytes
    }
    let ctx: Context
    do {
        ctx = try Context(options: options)
    } catch {
        // A context that cannot be created is the case's outcome.
        return checkError(error, expect)
    }
    defer { ctx.dispose() }
    if let setup = c["setup"]?.stringValue {
        do {
            try ctx.eval(setup)
        } catch {
            return "setup failed: \(error)"
        }
    }
    let evalOptions = EvalOptions(awaitPromise: c["await"]?.boolValue ?? false)
    let got: JSValue
    do {
        if let target = c["call"]?.stringValue {
            let args = try (c["args"]?.arrayValue ?? []).map(argument)
            got = try ctx.call(target: target, args: args, options: evalOptions)
        } else {
            got = try ctx.eval(source: c["source"]?.stringValue ?? "", options: evalOptions)
        }
    } catch {
        return checkError(error, expect)
    }
    if let kind = expect["error"]?.stringValue {
        return "expected \(kind), got the value \(got)"
    }
    guard let value = expect["value"] else {
        return "the case has neither expect.value nor expect.error"
    }
    return matches(got, value) ? nil : "expected \(value), got \(got)"
}

/// The conformance name of an error's kind.
private func kind(of error: PolyRacerError) -> String {
    switch error {
    case .Parse: return "ParseError"
    case .Js: return "JSError"
    case .Timeout: return "Timeout"
    case .Terminated: return "Terminated"
    case .OutOfMemory: return "OutOfMemory"
    case .Conversion: return "Conversion"
    case .Disposed: return "Disposed"
    case .InvalidArgument: return "InvalidArgument"
    }
}

/// Checks an error against `expect`; nil when it is the expected one.
private func checkError(_ error: Error, _ expect: CaseJSON) -> String? {
    guard let e = error as? PolyRacerError else {
        return "not a PolyRacerError: \(error)"
    }
    let text = String(describing: e)
    guard let want = expect["error"]?.stringValue else {
        return "expected a value, got the error \(kind(of: e)): \(text)"
    }
    if kind(of: e) != want {
        return "expected \(want), got \(kind(of: e)): \(text)"
    }
    if let name = expect["name"]?.stringValue, e.exception?.name != name {
        return "expected the name \(name), got \(String(describing: e.exception?.name))"
    }
    if let message = expect["message"]?.stringValue, e.exception?.message != message {
        return "expected the message \(message), got \(String(describing: e.exception?.message))"
    }
    if let part = expect["message_contains"]?.stringValue, !text.contains(part) {
        return "expected a message containing \(part), got \(text)"
    }
    return nil
}

private struct CaseEncodingError: Error, CustomStringConvertible {
    let description: String
}

/// The special number a `{"$float": ...}` names.
private func specialFloat(_ name: String?) -> Double? {
    guard let name = name else { return nil }
    switch name {
    case "NaN": return Double.nan
    case "Infinity": return Double.infinity
    case "-Infinity": return -Double.infinity
    case "-0": return -0.0 as Double
    default: return nil
    }
}

/// The encoding → a JSValue to pass as an argument.
private func argument(_ spec: CaseJSON) throws -> JSValue {
    if let special = spec.tagged {
        let (tag, x) = special
        switch tag {
        case "$undefined":
            return .undefined
        case "$float":
            guard let n = specialFloat(x.stringValue) else { throw CaseEncodingError(description: "bad \(spec)") }
            return .number(n)
        case "$bigint":
            guard let digits = x.stringValue else { throw CaseEncodingError(description: "bad \(spec)") }
            return .bigint(digits)
        case "$date":
            guard let ms = x.doubleValue else { throw CaseEncodingError(description: "bad \(spec)") }
            return .date(ms)
        case "$bytes":
            let bytes = try (x.arrayValue ?? []).map { b -> UInt8 in
                guard let n = b.integerValue, let byte = UInt8(exactly: n) else {
                    throw CaseEncodingError(description: "bad byte in \(spec)")
                }
                return byte
            }
            return .bytes(Data(bytes))
        case "$map":
            return .map(
                try (x.arrayValue ?? []).map { pair -> JsMapEntry in
                    guard let kv = pair.arrayValue, kv.count == 2 else {
                        throw CaseEncodingError(description: "bad entry in \(spec)")
                    }
                    let key = try argument(kv[0])
                    let value = try argument(kv[1])
                    return JsMapEntry(key: key, value: value)
                })
        case "$set":
            return .set(try (x.arrayValue ?? []).map(argument))
        default:
            throw CaseEncodingError(description: "cannot pass \(tag) as an argument")
        }
    }
    switch spec {
    case .null: return .null
    case .bool(let b): return .bool(b)
    case .integer(let i): return .integer(i)
    case .float(let d): return .number(d)
    case .string(let s): return .string(s)
    case .array(let items): return .array(try items.map(argument))
    case .object(let members):
        return .object(
            try members.map { member -> JsProperty in
                let value = try argument(member.value)
                return JsProperty(key: member.key, value: value)
            })
    }
}

/// Whether `got` is exactly the value the encoding describes: the same
/// kind (an integer is not a float), the same order for arrays, object
/// keys, Map entries and Set members.
private func matches(_ got: JSValue, _ spec: CaseJSON) -> Bool {
    if let special = spec.tagged {
        let (tag, x) = special
        switch tag {
        case "$undefined":
            if case .undefined = got { return true }
            return false
        case "$float":
            guard case .number(let n) = got, let want = specialFloat(x.stringValue) else { return false }
            if want.isNaN { return n.isNaN }
            return n == want && n.sign == want.sign
        case "$bigint":
            guard case .bigint(let digits) = got else { return false }
            return digits == x.stringValue
        case "$date":
            guard case .date(let ms) = got else { return false }
            return ms == x.doubleValue
        case "$bytes":
            guard case .bytes(let data) = got, let want = x.arrayValue else { return false }
            return data.map { Int64($0) } == want.map { $0.integerValue ?? -1 }
        case "$map":
            guard case .map(let entries) = got, let pairs = x.arrayValue, entries.count == pairs.count else {
                return false
            }
            return zip(entries, pairs).allSatisfy { entry, pair in
                guard let kv = pair.arrayValue, kv.count == 2 else { return false }
                return matches(entry.key, kv[0]) && matches(entry.value, kv[1])
            }
        case "$set":
            guard case .set(let items) = got, let want = x.arrayValue, items.count == want.count else { return false }
            return zip(items, want).allSatisfy { matches($0, $1) }
        case "$error":
            guard case .error(let name, let message, _) = got else { return false }
            return name == x["name"]?.stringValue && message == x["message"]?.stringValue
        case "$handle":
            guard let handleKind = x.stringValue else { return false }
            switch (handleKind, got) {
            case ("function", .function), ("promise", .promise), ("symbol", .symbol),
                ("object", .objectHandle), ("array", .arrayHandle):
                return true
            default:
                return false
            }
        default:
            return false
        }
    }
    switch spec {
    case .null:
        if case .null = got { return true }
        return false
    case .bool(let b):
        if case .bool(let g) = got { return g == b }
        return false
    case .integer(let i):
        if case .integer(let g) = got { return g == i }
        return false
    case .float(let d):
        if case .number(let g) = got { return g == d }
        return false
    case .string(let s):
        if case .string(let g) = got { return g == s }
        return false
    case .array(let want):
        guard case .array(let items) = got, items.count == want.count else { return false }
        return zip(items, want).allSatisfy { matches($0, $1) }
    case .object(let members):
        guard case .object(let props) = got, props.map({ $0.key }) == members.map({ $0.key }) else { return false }
        return zip(props, members).allSatisfy { matches($0.value, $1.value) }
    }
}

// MARK: - JSON that keeps what the encoding relies on

/// A JSON value keeping what the conformance encoding relies on and
/// JSONSerialization loses: object key order, and whether a number was
/// written as an integer (`2`) or a float (`2.0`, `1e300`).
indirect enum CaseJSON: CustomStringConvertible {
    case null
    case bool(Bool)
    case integer(Int64)
    case float(Double)
    case string(String)
    case array([CaseJSON])
    case object([(key: String, value: CaseJSON)])

    subscript(key: String) -> CaseJSON? {
        guard case .object(let members) = self else { return nil }
        return members.first { $0.key == key }?.value
    }

    var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    var boolValue: Bool? {
        if case .bool(let b) = self { return b }
        return nil
    }

    var integerValue: Int64? {
        if case .integer(let i) = self { return i }
        return nil
    }

    var doubleValue: Double? {
        switch self {
        case .integer(let i): return Double(i)
        case .float(let d): return d
        default: return nil
        }
    }

    var arrayValue: [CaseJSON]? {
        if case .array(let items) = self { return items }
        return nil
    }

    /// `{"$tag": x}`: one of the encoding's special values.
    var tagged: (tag: String, value: CaseJSON)? {
        guard case .object(let members) = self, members.count == 1, members[0].key.hasPrefix("$") else { return nil }
        return (members[0].key, members[0].value)
    }

    var description: String {
        switch self {
        case .null: return "null"
        case .bool(let b): return String(b)
        case .integer(let i): return String(i)
        case .float(let d): return String(d)
        case .string(let s): return "\"\(s)\""
        case .array(let items): return "[" + items.map { $0.description }.joined(separator: ", ") + "]"
        case .object(let members):
            return "{" + members.map { "\"\($0.key)\": \($0.value)" }.joined(separator: ", ") + "}"
        }
    }
}

/// A small JSON reader (RFC 8259) producing `CaseJSON`.
struct CaseJSONParser {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    private let bytes: [UInt8]
    private var at = 0

    private init(_ bytes: [UInt8]) {
        self.bytes = bytes
    }

    static func parse(_ data: Data) throws -> CaseJSON {
        var parser = CaseJSONParser([UInt8](data))
        let value = try parser.value()
        parser.skipSpace()
        guard parser.at == parser.bytes.count else { throw parser.failure("trailing characters") }
        return value
    }

    private func failure(_ what: String) -> Failure {
        Failure(description: "JSON: \(what) at byte \(at)")
    }

    private mutating func skipSpace() {
        while at < bytes.count, [0x20, 0x0A, 0x0D, 0x09].contains(bytes[at]) {
            at += 1
        }
    }

    /// Skips spaces and consumes `c` if it comes next.
    private mutating func consume(_ c: Character) -> Bool {
        skipSpace()
        guard at < bytes.count, bytes[at] == c.asciiValue else { return false }
        at += 1
        return true
    }

    private mutating func require(_ c: Character) throws {
        guard consume(c) else { throw failure("expected \(c)") }
    }

    private mutating func literal(_ word: String, _ value: CaseJSON) throws -> CaseJSON {
        let w = Array(word.utf8)
        guard at + w.count <= bytes.count, Array(bytes[at..<at + w.count]) == w else {
            throw failure("expected \(word)")
        }
        at += w.count
        return value
    }

    private mutating func value() throws -> CaseJSON {
        skipSpace()
        guard at < bytes.count else { throw failure("unexpected end") }
        switch bytes[at] {
        case UInt8(ascii: "{"):
            at += 1
            var members: [(key: String, value: CaseJSON)] = []
            if consume("}") { return .object(members) }
            repeat {
                skipSpace()
                let key = try string()
                try require(":")
                let member = try value()
                members.append((key: key, value: member))
            } while consume(",")
            try require("}")
            return .object(members)
        case UInt8(ascii: "["):
            at += 1
            var items: [CaseJSON] = []
            if consume("]") { return .array(items) }
            repeat {
                let item = try value()
                items.append(item)
            } while consume(",")
            try require("]")
            return .array(items)
        case UInt8(ascii: "\""):
            return .string(try string())
        case UInt8(ascii: "t"):
            return try literal("true", .bool(true))
        case UInt8(ascii: "f"):
            return try literal("false", .bool(false))
        case UInt8(ascii: "n"):
            return try literal("null", .null)
        default:
            return try number()
        }
    }

    private mutating func number() throws -> CaseJSON {
        let start = at
        var isFloat = false
        while at < bytes.count {
            let c = bytes[at]
            if c == UInt8(ascii: ".") || c == UInt8(ascii: "e") || c == UInt8(ascii: "E") {
                isFloat = true
            } else if !(c == UInt8(ascii: "-") || c == UInt8(ascii: "+") || (c >= 0x30 && c <= 0x39)) {
                break
            }
            at += 1
        }
        let text = String(decoding: bytes[start..<at], as: UTF8.self)
        if !isFloat, let i = Int64(text) {
            return .integer(i)
        }
        guard !text.isEmpty, let d = Double(text) else { throw failure("bad number \(text)") }
        return .float(d)
    }

    /// A string literal. Escapes are collected as UTF-16 code units, so a
    /// lone surrogate (`"\uD800"`) becomes U+FFFD, as it does in JS → host
    /// conversion.
    private mutating func string() throws -> String {
        try require("\"")
        var units: [UInt16] = []
        var raw: [UInt8] = []
        while true {
            guard at < bytes.count else { throw failure("unterminated string") }
            let c = bytes[at]
            at += 1
            if c == UInt8(ascii: "\"") {
                break
            }
            if c != UInt8(ascii: "\\") {
                raw.append(c)
                continue
            }
            units.append(contentsOf: String(decoding: raw, as: UTF8.self).utf16)
            raw.removeAll()
            guard at < bytes.count else { throw failure("unterminated escape") }
            let e = bytes[at]
            at += 1
            switch e {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): units.append(UInt16(e))
            case UInt8(ascii: "b"): units.append(0x08)
            case UInt8(ascii: "f"): units.append(0x0C)
            case UInt8(ascii: "n"): units.append(0x0A)
            case UInt8(ascii: "r"): units.append(0x0D)
            case UInt8(ascii: "t"): units.append(0x09)
            case UInt8(ascii: "u"):
                guard at + 4 <= bytes.count,
                    let unit = UInt16(String(decoding: bytes[at..<at + 4], as: UTF8.self), radix: 16)
                else { throw failure("bad \\u escape") }
                units.append(unit)
                at += 4
            default:
                throw failure("bad escape")
            }
        }
        units.append(contentsOf: String(decoding: raw, as: UTF8.self).utf16)
        return String(decoding: units, as: UTF16.self)
    }
}
