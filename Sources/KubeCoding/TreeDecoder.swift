/// Options and findings shared by every decoder of one decoding pass.
final class DecodingContext {
    /// Paths of fields the model does not know (kept in ``UnknownFields``, reported when strict).
    var unknownFieldPaths: [String] = []
    /// Record unknown fields but do not keep them in the decoded value.
    var discardUnknownFields = false
}

/// Decodes `Decodable` values from a ``JSONValue`` tree, with errors that name the field path.
///
/// Knows the ``UnknownFields`` contract: a keyed container asked for `UnknownFields` answers
/// with every member whose name is not one of the container's coding keys.
final class TreeDecoder: Decoder {
    let node: JSONValue
    let codingPath: [any CodingKey]
    let context: DecodingContext
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    init(node: JSONValue, codingPath: [any CodingKey], context: DecodingContext) {
        self.node = node
        self.codingPath = codingPath
        self.context = context
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        guard case .object(let object) = node else { throw mismatch("object") }
        return KeyedDecodingContainer(KeyedTreeDecodingContainer<Key>(object: object, decoder: self))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        guard case .array(let items) = node else { throw mismatch("array") }
        return UnkeyedTreeDecodingContainer(items: items, decoder: self)
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer { self }

    func mismatch(_ expected: String) -> KubeDecodingError {
        KubeDecodingError(kind: .typeMismatch, path: FieldPath.format(codingPath), message: "expected \(expected), found \(node.shortDescription)")
    }

    /// Decodes `type` from `node` found at `path`, taking fast paths for primitives.
    func decodeValue<T: Decodable>(_ type: T.Type, from node: JSONValue, at path: [any CodingKey]) throws -> T {
        let child = TreeDecoder(node: node, codingPath: path, context: context)
        switch type {
        case is String.Type: return try child.decode(String.self) as! T
        case is Bool.Type: return try child.decode(Bool.self) as! T
        case is Int.Type: return try child.decode(Int.self) as! T
        case is Int32.Type: return try child.decode(Int32.self) as! T
        case is Int64.Type: return try child.decode(Int64.self) as! T
        case is Double.Type: return try child.decode(Double.self) as! T
        case is JSONValue.Type: return node as! T
        default: return try T(from: child)
        }
    }
}

extension TreeDecoder: SingleValueDecodingContainer {
    func decodeNil() -> Bool { node == .null }

    func decode(_ type: Bool.Type) throws -> Bool {
        guard case .bool(let value) = node else { throw mismatch("boolean") }
        return value
    }

    func decode(_ type: String.Type) throws -> String {
        guard case .string(let value) = node else { throw mismatch("string") }
        return value
    }

    func decode(_ type: Double.Type) throws -> Double {
        guard case .number(let literal) = node, let value = Double(literal) else { throw mismatch("number") }
        return value
    }

    func decode(_ type: Float.Type) throws -> Float { Float(try decode(Double.self)) }

    func decode<T: BinaryInteger & FixedWidthInteger>(integer type: T.Type) throws -> T {
        guard case .number(let literal) = node else { throw mismatch("integer") }
        guard literal.utf8.allSatisfy({ $0 == UInt8(ascii: "-") || ($0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9")) }) else {
            throw KubeDecodingError(kind: .typeMismatch, path: FieldPath.format(codingPath), message: "expected integer, found number \(literal)")
        }
        guard let value = T(literal) else {
            throw KubeDecodingError(
                kind: .invalidValue, path: FieldPath.format(codingPath),
                message: "\(literal) is out of range for a \(T.bitWidth)-bit integer")
        }
        return value
    }

    func decode(_ type: Int.Type) throws -> Int { try decode(integer: Int.self) }
    func decode(_ type: Int8.Type) throws -> Int8 { try decode(integer: Int8.self) }
    func decode(_ type: Int16.Type) throws -> Int16 { try decode(integer: Int16.self) }
    func decode(_ type: Int32.Type) throws -> Int32 { try decode(integer: Int32.self) }
    func decode(_ type: Int64.Type) throws -> Int64 { try decode(integer: Int64.self) }
    func decode(_ type: UInt.Type) throws -> UInt { try decode(integer: UInt.self) }
    func decode(_ type: UInt8.Type) throws -> UInt8 { try decode(integer: UInt8.self) }
    func decode(_ type: UInt16.Type) throws -> UInt16 { try decode(integer: UInt16.self) }
    func decode(_ type: UInt32.Type) throws -> UInt32 { try decode(integer: UInt32.self) }
    func decode(_ type: UInt64.Type) throws -> UInt64 { try decode(integer: UInt64.self) }

    func decode<T: Decodable>(_ type: T.Type) throws -> T {
        try decodeValue(type, from: node, at: codingPath)
    }
}

/// What a custom `init(from:)` may ask a ``KubeJSON`` decoder: the node itself (a number's
/// literal text, say) and a type-mismatch error that names the field.
public protocol JSONTreeDecoding: Decoder {
    var node: JSONValue { get }
    func mismatch(_ expected: String) -> KubeDecodingError
}

extension TreeDecoder: JSONTreeDecoding {}
