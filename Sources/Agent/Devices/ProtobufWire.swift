/// The protobuf wire format, as much as the device plugin API's messages need: varints,
/// length-delimited fields (strings, bytes, nested messages, map entries) and skipping the rest.
/// Reading is bounded by the buffer: a hostile length fails, never traps.
struct ProtobufWriter {
    private(set) var bytes: [UInt8] = []

    mutating func varint(_ value: UInt64) {
        var rest = value
        while rest >= 0x80 {
            bytes.append(UInt8(rest & 0x7f) | 0x80)
            rest >>= 7
        }
        bytes.append(UInt8(rest))
    }

    mutating func key(_ field: Int, _ wireType: UInt64) { varint(UInt64(field) << 3 | wireType) }

    mutating func bytesField(_ field: Int, _ value: [UInt8]) {
        key(field, 2)
        varint(UInt64(value.count))
        bytes += value
    }

    mutating func string(_ field: Int, _ value: String) { bytesField(field, Array(value.utf8)) }

    mutating func bool(_ field: Int, _ value: Bool) {
        guard value else { return }
        key(field, 0)
        varint(1)
    }

    mutating func int(_ field: Int, _ value: Int64) {
        guard value != 0 else { return }
        key(field, 0)
        varint(UInt64(bitPattern: value))
    }

    mutating func message(_ field: Int, _ build: (inout ProtobufWriter) -> Void) {
        var nested = ProtobufWriter()
        build(&nested)
        bytesField(field, nested.bytes)
    }
}

/// Reads fields one at a time; unknown ones are skipped by their wire type.
struct ProtobufReader {
    enum Value {
        case varint(UInt64)
        case bytes(ArraySlice<UInt8>)
        case fixed
    }

    struct Malformed: Error, CustomStringConvertible {
        var description: String
    }

    private let bytes: ArraySlice<UInt8>
    private var index: Int

    init(_ bytes: ArraySlice<UInt8>) {
        self.bytes = bytes
        index = bytes.startIndex
    }

    init(_ bytes: [UInt8]) { self.init(bytes[...]) }

    private mutating func varint() throws(Malformed) -> UInt64 {
        var value: UInt64 = 0
        for shift in stride(from: 0, to: 64, by: 7) {
            guard index < bytes.endIndex else { throw Malformed(description: "truncated varint") }
            let byte = bytes[index]
            index += 1
            value |= UInt64(byte & 0x7f) << UInt64(shift)
            if byte & 0x80 == 0 { return value }
        }
        throw Malformed(description: "varint longer than 10 bytes")
    }

    /// The next field number and value; nil at the end.
    mutating func next() throws(Malformed) -> (field: Int, value: Value)? {
        guard index < bytes.endIndex else { return nil }
        let key = try varint()
        let field = Int(truncatingIfNeeded: key >> 3)
        switch key & 7 {
        case 0: return (field, .varint(try varint()))
        case 1, 5:
            let size = key & 7 == 1 ? 8 : 4
            guard bytes.endIndex - index >= size else { throw Malformed(description: "truncated fixed field \(field)") }
            index += size
            return (field, .fixed)
        case 2:
            let length = try varint()
            guard length <= UInt64(bytes.endIndex - index) else { throw Malformed(description: "field \(field) is longer than the message") }
            let start = index
            index += Int(length)
            return (field, .bytes(bytes[start..<index]))
        default:
            throw Malformed(description: "unsupported wire type \(key & 7) in field \(field)")
        }
    }
}

extension ProtobufReader.Value {
    var string: String? {
        if case .bytes(let slice) = self { return String(decoding: slice, as: UTF8.self) }
        return nil
    }

    var slice: ArraySlice<UInt8>? {
        if case .bytes(let slice) = self { return slice }
        return nil
    }

    var bool: Bool {
        if case .varint(let value) = self { return value != 0 }
        return false
    }
}
