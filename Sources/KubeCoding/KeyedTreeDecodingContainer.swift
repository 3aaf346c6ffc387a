/// The keyed container of ``TreeDecoder``: an object's members by name.
struct KeyedTreeDecodingContainer<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let object: JSONObject
    let decoder: TreeDecoder
    private let index: [String: JSONValue]

    init(object: JSONObject, decoder: TreeDecoder) {
        self.object = object
        self.decoder = decoder
        var index: [String: JSONValue] = [:]
        index.reserveCapacity(object.count)
        for member in object { index[member.key] = member.value }
        self.index = index
    }

    var codingPath: [any CodingKey] { decoder.codingPath }
    var allKeys: [Key] { object.compactMap { Key(stringValue: $0.key) } }

    func contains(_ key: Key) -> Bool { index[key.stringValue] != nil }

    func decodeNil(forKey key: Key) throws -> Bool {
        guard let value = index[key.stringValue] else { return true }
        return value == .null
    }

    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
        if type == UnknownFields.self { return unknownFields() as! T }
        guard let value = index[key.stringValue], value != .null else {
            if let optionalType = type as? any EmptyWhenAbsent.Type { return optionalType.emptyValue as! T }
            throw KubeDecodingError(kind: .missingField, path: FieldPath.format(codingPath + [key]), message: "required value is missing")
        }
        return try decoder.decodeValue(type, from: value, at: codingPath + [key])
    }

    /// The members whose names are not coding keys of this container; records their paths.
    private func unknownFields() -> UnknownFields {
        var unknown = JSONObject()
        for member in object where Key(stringValue: member.key) == nil {
            if !decoder.context.discardUnknownFields { unknown.appendUnchecked(member.key, member.value) }
            decoder.context.unknownFieldPaths.append(FieldPath.format(codingPath + [AnyCodingKey(member.key)]))
        }
        return UnknownFields(unknown)
    }

    func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool { try decode(type, key) }
    func decode(_ type: String.Type, forKey key: Key) throws -> String { try decode(type, key) }
    func decode(_ type: Double.Type, forKey key: Key) throws -> Double { try decode(type, key) }
    func decode(_ type: Float.Type, forKey key: Key) throws -> Float { try decode(type, key) }
    func decode(_ type: Int.Type, forKey key: Key) throws -> Int { try decode(type, key) }
    func decode(_ type: Int8.Type, forKey key: Key) throws -> Int8 { try decode(type, key) }
    func decode(_ type: Int16.Type, forKey key: Key) throws -> Int16 { try decode(type, key) }
    func decode(_ type: Int32.Type, forKey key: Key) throws -> Int32 { try decode(type, key) }
    func decode(_ type: Int64.Type, forKey key: Key) throws -> Int64 { try decode(type, key) }
    func decode(_ type: UInt.Type, forKey key: Key) throws -> UInt { try decode(type, key) }
    func decode(_ type: UInt8.Type, forKey key: Key) throws -> UInt8 { try decode(type, key) }
    func decode(_ type: UInt16.Type, forKey key: Key) throws -> UInt16 { try decode(type, key) }
    func decode(_ type: UInt32.Type, forKey key: Key) throws -> UInt32 { try decode(type, key) }
    func decode(_ type: UInt64.Type, forKey key: Key) throws -> UInt64 { try decode(type, key) }

    private func decode<T: Decodable>(_ type: T.Type, _ key: Key) throws -> T {
        guard let value = index[key.stringValue], value != .null else {
            throw KubeDecodingError(kind: .missingField, path: FieldPath.format(codingPath + [key]), message: "required value is missing")
        }
        let child = TreeDecoder(node: value, codingPath: codingPath + [key], context: decoder.context)
        return try child.decode(type)
    }

    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
        try childDecoder(key).container(keyedBy: type)
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
        try childDecoder(key).unkeyedContainer()
    }

    func superDecoder() throws -> any Decoder { decoder }
    func superDecoder(forKey key: Key) throws -> any Decoder { try childDecoder(key) }

    private func childDecoder(_ key: Key) throws -> TreeDecoder {
        guard let value = index[key.stringValue] else {
            throw KubeDecodingError(kind: .missingField, path: FieldPath.format(codingPath + [key]), message: "required value is missing")
        }
        return TreeDecoder(node: value, codingPath: codingPath + [key], context: decoder.context)
    }
}

/// The unkeyed container of ``TreeDecoder``: an array's elements in order.
struct UnkeyedTreeDecodingContainer: UnkeyedDecodingContainer {
    let items: [JSONValue]
    let decoder: TreeDecoder
    private(set) var currentIndex = 0

    init(items: [JSONValue], decoder: TreeDecoder) {
        self.items = items
        self.decoder = decoder
    }

    var codingPath: [any CodingKey] { decoder.codingPath }
    var count: Int? { items.count }
    var isAtEnd: Bool { currentIndex >= items.count }

    mutating func decodeNil() throws -> Bool {
        guard !isAtEnd else { throw endError() }
        if items[currentIndex] == .null {
            currentIndex += 1
            return true
        }
        return false
    }

    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T {
        guard !isAtEnd else { throw endError() }
        let path = codingPath + [AnyCodingKey(intValue: currentIndex)]
        let value = try decoder.decodeValue(type, from: items[currentIndex], at: path)
        currentIndex += 1
        return value
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
        try nextDecoder().container(keyedBy: type)
    }

    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
        try nextDecoder().unkeyedContainer()
    }

    mutating func superDecoder() throws -> any Decoder { try nextDecoder() }

    private mutating func nextDecoder() throws -> TreeDecoder {
        guard !isAtEnd else { throw endError() }
        let child = TreeDecoder(node: items[currentIndex], codingPath: codingPath + [AnyCodingKey(intValue: currentIndex)], context: decoder.context)
        currentIndex += 1
        return child
    }

    private func endError() -> KubeDecodingError {
        KubeDecodingError(kind: .missingField, path: FieldPath.format(codingPath), message: "array has only \(items.count) elements")
    }
}
