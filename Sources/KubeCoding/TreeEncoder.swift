/// Encodes `Encodable` values into a ``JSONValue`` tree.
///
/// Knows the ``UnknownFields`` contract (its members are written into the enclosing object) and
/// writes string-keyed dictionaries in sorted key order, so equal objects encode to equal bytes.
final class TreeEncoder: Encoder {
    let builder: NodeBuilder
    let codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    init(builder: NodeBuilder, codingPath: [any CodingKey]) {
        self.builder = builder
        self.codingPath = codingPath
    }

    /// Encodes a whole value into a tree.
    static func encode<T: Encodable>(_ value: T) throws -> JSONValue {
        let root = NodeBuilder()
        try TreeEncoder(builder: root, codingPath: []).encodeValue(value, into: root, at: [])
        return root.build()
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        builder.becomeObject()
        return KeyedEncodingContainer(KeyedTreeEncodingContainer<Key>(encoder: self))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        builder.becomeArray()
        return UnkeyedTreeEncodingContainer(encoder: self)
    }

    func singleValueContainer() -> any SingleValueEncodingContainer { self }

    /// Encodes `value` into `node`, taking fast paths for primitives.
    func encodeValue<T: Encodable>(_ value: T, into node: NodeBuilder, at path: [any CodingKey]) throws {
        switch value {
        case let text as String: node.set(.string(text))
        case let flag as Bool: node.set(.bool(flag))
        case let number as Int: node.set(.integer(number))
        case let number as Int32: node.set(.integer(number))
        case let number as Int64: node.set(.integer(number))
        case let number as Double: node.set(try Self.number(number, at: path))
        case let json as JSONValue: node.set(json)
        case let dictionary as any StringKeyedEncodableDictionary:
            try dictionary.encodeSorted(into: node, encoder: self, at: path)
        default:
            try value.encode(to: TreeEncoder(builder: node, codingPath: path))
        }
    }

    static func number(_ value: Double, at path: [any CodingKey]) throws -> JSONValue {
        guard value.isFinite else {
            throw EncodingError.invalidValue(value, EncodingError.Context(codingPath: path, debugDescription: "\(value) is not a JSON number"))
        }
        if value == value.rounded(), abs(value) < 1e15 { return .number(String(Int64(value))) }
        return .number(String(value))
    }
}

extension TreeEncoder: SingleValueEncodingContainer {
    func encodeNil() { builder.set(.null) }
    func encode(_ value: Bool) { builder.set(.bool(value)) }
    func encode(_ value: String) { builder.set(.string(value)) }
    func encode(_ value: Double) throws { builder.set(try Self.number(value, at: codingPath)) }
    func encode(_ value: Float) throws { builder.set(try Self.number(Double(value), at: codingPath)) }
    func encode(_ value: Int) { builder.set(.integer(value)) }
    func encode(_ value: Int8) { builder.set(.integer(value)) }
    func encode(_ value: Int16) { builder.set(.integer(value)) }
    func encode(_ value: Int32) { builder.set(.integer(value)) }
    func encode(_ value: Int64) { builder.set(.integer(value)) }
    func encode(_ value: UInt) { builder.set(.integer(value)) }
    func encode(_ value: UInt8) { builder.set(.integer(value)) }
    func encode(_ value: UInt16) { builder.set(.integer(value)) }
    func encode(_ value: UInt32) { builder.set(.integer(value)) }
    func encode(_ value: UInt64) { builder.set(.integer(value)) }
    func encode<T: Encodable>(_ value: T) throws { try encodeValue(value, into: builder, at: codingPath) }
}

/// Dictionaries with string keys, written member by member in sorted key order.
protocol StringKeyedEncodableDictionary {
    func encodeSorted(into node: NodeBuilder, encoder: TreeEncoder, at path: [any CodingKey]) throws
}

extension Dictionary: StringKeyedEncodableDictionary where Key == String, Value: Encodable {
    func encodeSorted(into node: NodeBuilder, encoder: TreeEncoder, at path: [any CodingKey]) throws {
        node.becomeObject()
        for key in keys.sorted() {
            try encoder.encodeValue(self[key]!, into: node.child(forKey: key), at: path + [AnyCodingKey(key)])
        }
    }
}

/// The keyed container of ``TreeEncoder``.
struct KeyedTreeEncodingContainer<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let encoder: TreeEncoder
    var codingPath: [any CodingKey] { encoder.codingPath }

    mutating func encodeNil(forKey key: Key) { encoder.builder.child(forKey: key.stringValue).set(.null) }

    mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
        if let unknown = value as? UnknownFields {
            encoder.builder.merge(unknown.members)
            return
        }
        try encoder.encodeValue(value, into: encoder.builder.child(forKey: key.stringValue), at: codingPath + [key])
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key) -> KeyedEncodingContainer<NestedKey> {
        TreeEncoder(builder: encoder.builder.child(forKey: key.stringValue), codingPath: codingPath + [key]).container(keyedBy: keyType)
    }

    mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
        TreeEncoder(builder: encoder.builder.child(forKey: key.stringValue), codingPath: codingPath + [key]).unkeyedContainer()
    }

    mutating func superEncoder() -> any Encoder { encoder }
    mutating func superEncoder(forKey key: Key) -> any Encoder {
        TreeEncoder(builder: encoder.builder.child(forKey: key.stringValue), codingPath: codingPath + [key])
    }
}

/// The unkeyed container of ``TreeEncoder``.
struct UnkeyedTreeEncodingContainer: UnkeyedEncodingContainer {
    let encoder: TreeEncoder
    var codingPath: [any CodingKey] { encoder.codingPath }
    var count: Int { encoder.builder.elementCount }

    mutating func encodeNil() { encoder.builder.appendElement().set(.null) }

    mutating func encode<T: Encodable>(_ value: T) throws {
        let path = codingPath + [AnyCodingKey(intValue: count)]
        try encoder.encodeValue(value, into: encoder.builder.appendElement(), at: path)
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
        let path = codingPath + [AnyCodingKey(intValue: count)]
        return TreeEncoder(builder: encoder.builder.appendElement(), codingPath: path).container(keyedBy: keyType)
    }

    mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
        let path = codingPath + [AnyCodingKey(intValue: count)]
        return TreeEncoder(builder: encoder.builder.appendElement(), codingPath: path).unkeyedContainer()
    }

    mutating func superEncoder() -> any Encoder {
        let path = codingPath + [AnyCodingKey(intValue: count)]
        return TreeEncoder(builder: encoder.builder.appendElement(), codingPath: path)
    }
}
