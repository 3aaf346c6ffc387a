/// A strict JSON (RFC 8259) parser producing ``JSONValue``.
///
/// Errors carry the line and column of the offending byte. Nesting is limited so hostile input
/// cannot exhaust the stack; number literals are validated and kept as written.
struct JSONParser {
    /// Deepest nesting accepted; real API objects stay far below this.
    static let maximumDepth = 256

    private let bytes: [UInt8]
    private var index = 0
    private var depth = 0
    /// Object keys that appeared twice, as "line L: key" descriptions (strict decoding reports them);
    /// at most ``maximumReportedDuplicates``, so reporting stays linear in the body.
    private(set) var duplicateKeys: [String] = []
    /// Duplicates past this many are not described: the report already names enough to fix the input.
    static let maximumReportedDuplicates = 100
    /// Offset up to which ``linesBeforeScanned`` counted newlines; duplicate positions only move forward.
    private var scannedOffset = 0
    private var linesBeforeScanned = 1
    /// Bytes read to compute duplicate-key lines (at most the body once).
    private(set) var positionBytesScanned = 0

    init(bytes: [UInt8]) { self.bytes = bytes }

    /// Parses a whole document: one value with only whitespace around it.
    mutating func parseDocument() throws(KubeDecodingError) -> JSONValue {
        skipWhitespace()
        if index == bytes.count { throw syntaxError("empty document") }
        let value = try parseValue()
        skipWhitespace()
        if index != bytes.count { throw syntaxError("unexpected \(describe(bytes[index])) after the document") }
        return value
    }

    private mutating func parseValue() throws(KubeDecodingError) -> JSONValue {
        guard index < bytes.count else { throw syntaxError("unexpected end of input") }
        switch bytes[index] {
        case UInt8(ascii: "{"): return try parseObject()
        case UInt8(ascii: "["): return try parseArray()
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try expectWord("true"); return .bool(true)
        case UInt8(ascii: "f"): try expectWord("false"); return .bool(false)
        case UInt8(ascii: "n"): try expectWord("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try parseNumber())
        default: throw syntaxError("unexpected \(describe(bytes[index])), expected a value")
        }
    }

    private mutating func enter() throws(KubeDecodingError) {
        depth += 1
        if depth > Self.maximumDepth { throw syntaxError("nesting deeper than \(Self.maximumDepth) levels") }
    }

    private mutating func parseObject() throws(KubeDecodingError) -> JSONValue {
        try enter()
        defer { depth -= 1 }
        index += 1
        var object = JSONObject()
        var seen = Set<String>()
        skipWhitespace()
        if peek(UInt8(ascii: "}")) { index += 1; return .object(object) }
        while true {
            skipWhitespace()
            guard peek(UInt8(ascii: "\"")) else { throw syntaxError("expected a string as object key") }
            let keyStart = index
            let key = try parseString()
            skipWhitespace()
            guard peek(UInt8(ascii: ":")) else { throw syntaxError("expected ':' after object key \"\(key)\"") }
            index += 1
            // Checked before the value is parsed, so duplicates are recorded in document order.
            let isNew = seen.insert(key).inserted
            if !isNew, duplicateKeys.count < Self.maximumReportedDuplicates {
                duplicateKeys.append("line \(line(at: keyStart)): \"\(key)\"")
            }
            skipWhitespace()
            let value = try parseValue()
            if isNew {
                object.appendUnchecked(key, value)
            } else {
                object[key] = value  // the last one wins, as in Go's encoding/json
            }
            skipWhitespace()
            guard index < bytes.count else { throw syntaxError("unexpected end of input inside an object") }
            if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
            if bytes[index] == UInt8(ascii: "}") { index += 1; return .object(object) }
            throw syntaxError("expected ',' or '}' after an object member, found \(describe(bytes[index]))")
        }
    }

    private mutating func parseArray() throws(KubeDecodingError) -> JSONValue {
        try enter()
        defer { depth -= 1 }
        index += 1
        var items: [JSONValue] = []
        skipWhitespace()
        if peek(UInt8(ascii: "]")) { index += 1; return .array(items) }
        while true {
            skipWhitespace()
            items.append(try parseValue())
            skipWhitespace()
            guard index < bytes.count else { throw syntaxError("unexpected end of input inside an array") }
            if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
            if bytes[index] == UInt8(ascii: "]") { index += 1; return .array(items) }
            throw syntaxError("expected ',' or ']' after an array element, found \(describe(bytes[index]))")
        }
    }

    private mutating func parseString() throws(KubeDecodingError) -> String {
        index += 1  // opening quote
        var utf8: [UInt8] = []
        while true {
            guard index < bytes.count else { throw syntaxError("unterminated string") }
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "\""):
                index += 1
                return String(decoding: utf8, as: UTF8.self)
            case UInt8(ascii: "\\"):
                index += 1
                guard index < bytes.count else { throw syntaxError("unterminated escape") }
                let escape = bytes[index]
                index += 1
                switch escape {
                case UInt8(ascii: "\""): utf8.append(UInt8(ascii: "\""))
                case UInt8(ascii: "\\"): utf8.append(UInt8(ascii: "\\"))
                case UInt8(ascii: "/"): utf8.append(UInt8(ascii: "/"))
                case UInt8(ascii: "b"): utf8.append(0x08)
                case UInt8(ascii: "f"): utf8.append(0x0C)
                case UInt8(ascii: "n"): utf8.append(0x0A)
                case UInt8(ascii: "r"): utf8.append(0x0D)
                case UInt8(ascii: "t"): utf8.append(0x09)
                case UInt8(ascii: "u"): utf8.append(contentsOf: try parseUnicodeEscape())
                default: throw syntaxError("invalid escape \\\(describe(escape))")
                }
            case 0x00..<0x20:
                throw syntaxError("control character \(describe(byte)) in a string")
            default:
                utf8.append(byte)
                index += 1
            }
        }
    }

    /// Parses the XXXX of `\uXXXX` (and a following low surrogate) into UTF-8 bytes.
    private mutating func parseUnicodeEscape() throws(KubeDecodingError) -> [UInt8] {
        let high = try parseHex4()
        var scalarValue = UInt32(high)
        if (0xD800...0xDBFF).contains(high) {
            if index + 1 < bytes.count, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u") {
                index += 2
                let low = try parseHex4()
                if (0xDC00...0xDFFF).contains(low) {
                    scalarValue = 0x10000 + ((UInt32(high) - 0xD800) << 10) + (UInt32(low) - 0xDC00)
                } else {
                    scalarValue = 0xFFFD
                }
            } else {
                scalarValue = 0xFFFD
            }
        } else if (0xDC00...0xDFFF).contains(high) {
            scalarValue = 0xFFFD
        }
        let scalar = Unicode.Scalar(scalarValue) ?? "\u{FFFD}"
        return Array(String(Character(scalar)).utf8)
    }

    private mutating func parseHex4() throws(KubeDecodingError) -> UInt16 {
        guard index + 4 <= bytes.count else { throw syntaxError("truncated \\u escape") }
        var value: UInt16 = 0
        for _ in 0..<4 {
            let byte = bytes[index]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw syntaxError("invalid hex digit \(describe(byte)) in \\u escape")
            }
            value = value << 4 | UInt16(digit)
            index += 1
        }
        return value
    }

    private mutating func parseNumber() throws(KubeDecodingError) -> String {
        let start = index
        if peek(UInt8(ascii: "-")) { index += 1 }
        guard index < bytes.count, isDigit(bytes[index]) else { throw syntaxError("invalid number: expected a digit") }
        if bytes[index] == UInt8(ascii: "0") {
            index += 1
            if index < bytes.count, isDigit(bytes[index]) { throw syntaxError("invalid number: leading zero") }
        } else {
            while index < bytes.count, isDigit(bytes[index]) { index += 1 }
        }
        if peek(UInt8(ascii: ".")) {
            index += 1
            guard index < bytes.count, isDigit(bytes[index]) else { throw syntaxError("invalid number: expected a digit after '.'") }
            while index < bytes.count, isDigit(bytes[index]) { index += 1 }
        }
        if peek(UInt8(ascii: "e")) || peek(UInt8(ascii: "E")) {
            index += 1
            if peek(UInt8(ascii: "+")) || peek(UInt8(ascii: "-")) { index += 1 }
            guard index < bytes.count, isDigit(bytes[index]) else { throw syntaxError("invalid number: expected a digit in the exponent") }
            while index < bytes.count, isDigit(bytes[index]) { index += 1 }
        }
        return String(decoding: bytes[start..<index], as: UTF8.self)
    }

    private mutating func expectWord(_ word: StaticString) throws(KubeDecodingError) {
        let expected = UnsafeBufferPointer(start: word.utf8Start, count: word.utf8CodeUnitCount)
        guard index + expected.count <= bytes.count, bytes[index..<index + expected.count].elementsEqual(expected) else {
            throw syntaxError("invalid literal, expected \(word)")
        }
        index += expected.count
    }

    private mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x09, 0x0A, 0x0D: index += 1
            default: return
            }
        }
    }

    private func peek(_ byte: UInt8) -> Bool { index < bytes.count && bytes[index] == byte }
    private func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }

    private func describe(_ byte: UInt8) -> String {
        if byte >= 0x21 && byte < 0x7F { return "'\(Character(Unicode.Scalar(byte)))'" }
        return "byte 0x" + String(byte, radix: 16)
    }

    /// Line of `offset`, counting on from the last offset asked for: duplicates are recorded in
    /// document order, so all their lines together cost one pass over the body.
    private mutating func line(at offset: Int) -> Int {
        if offset < scannedOffset { scannedOffset = 0; linesBeforeScanned = 1 }
        for byte in bytes[scannedOffset..<offset] where byte == 0x0A { linesBeforeScanned += 1 }
        positionBytesScanned += offset - scannedOffset
        scannedOffset = offset
        return linesBeforeScanned
    }

    /// Line and column of `offset` (the current index by default). Linear in the offset: only
    /// for error messages, never on the success path.
    private func position(at offset: Int? = nil) -> (line: Int, column: Int) {
        var line = 1
        var column = 1
        for byte in bytes[0..<min(offset ?? index, bytes.count)] {
            if byte == 0x0A { line += 1; column = 1 } else { column += 1 }
        }
        return (line, column)
    }

    private func syntaxError(_ message: String) -> KubeDecodingError {
        let (line, column) = position()
        return KubeDecodingError(kind: .syntax, path: "", message: "invalid JSON at line \(line), column \(column): \(message)")
    }
}
