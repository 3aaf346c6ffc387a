import FoundationEssentials

/// How a decoder treats fields the model does not know.
public enum FieldValidation: Sendable {
    /// Keep them in ``UnknownFields`` and write them back on encode (the default for clients).
    case preserve
    /// Fail with every unknown field and duplicate key listed (the API server's `fieldValidation=Strict`).
    case strict
    /// Drop them (the API server's `fieldValidation=Ignore` and `Warn`: unknown fields are pruned).
    case discard
}

/// JSON coding of Kubernetes API objects, with typed errors that name the field path.
public enum KubeJSON {
    /// Decodes `type` from UTF-8 JSON bytes.
    public static func decode<T: Decodable>(
        _ type: T.Type, from bytes: [UInt8], validation: FieldValidation = .preserve
    ) throws(KubeDecodingError) -> T {
        var parser = JSONParser(bytes: bytes)
        let tree = try parser.parseDocument()
        return try decode(type, from: tree, validation: validation, duplicateKeys: parser.duplicateKeys)
    }

    /// Decodes `type` from UTF-8 JSON data.
    public static func decode<T: Decodable>(
        _ type: T.Type, from data: Data, validation: FieldValidation = .preserve
    ) throws(KubeDecodingError) -> T {
        try decode(type, from: [UInt8](data), validation: validation)
    }

    /// Decodes `type` from a JSON string.
    public static func decode<T: Decodable>(
        _ type: T.Type, from text: String, validation: FieldValidation = .preserve
    ) throws(KubeDecodingError) -> T {
        try decode(type, from: Array(text.utf8), validation: validation)
    }

    /// Parses JSON into a tree without a model.
    public static func parse(_ bytes: [UInt8]) throws(KubeDecodingError) -> JSONValue {
        var parser = JSONParser(bytes: bytes)
        return try parser.parseDocument()
    }

    /// Decodes `type` from an already parsed tree (JSON or YAML).
    public static func decode<T: Decodable>(
        _ type: T.Type, from tree: JSONValue, validation: FieldValidation = .preserve, duplicateKeys: [String] = []
    ) throws(KubeDecodingError) -> T {
        try decodeReportingUnknownFields(type, from: tree, validation: validation, duplicateKeys: duplicateKeys).value
    }

    /// Decodes `type` from a tree and also returns the paths of the fields the model does not know
    /// (for `fieldValidation=Warn` warnings).
    public static func decodeReportingUnknownFields<T: Decodable>(
        _ type: T.Type, from tree: JSONValue, validation: FieldValidation = .preserve, duplicateKeys: [String] = []
    ) throws(KubeDecodingError) -> (value: T, unknownFields: [String]) {
        let context = DecodingContext()
        context.discardUnknownFields = validation == .discard
        let value: T
        do {
            value = try TreeDecoder(node: tree, codingPath: [], context: context).decodeValue(type, from: tree, at: [])
        } catch let error as KubeDecodingError {
            throw error
        } catch let error as DecodingError {
            throw KubeDecodingError(error)
        } catch {
            throw KubeDecodingError(kind: .invalidValue, path: "", message: String(describing: error))
        }
        if validation == .strict, !(context.unknownFieldPaths.isEmpty && duplicateKeys.isEmpty) {
            let problems = context.unknownFieldPaths.map { "unknown field \"\($0)\"" } + duplicateKeys.map { "duplicate field \($0)" }
            throw KubeDecodingError(kind: .unknownField, path: "", message: "strict decoding error: " + problems.joined(separator: ", "))
        }
        return (value, context.unknownFieldPaths)
    }

    /// Encodes a value as a JSON tree.
    public static func tree<T: Encodable>(_ value: T) throws -> JSONValue {
        try TreeEncoder.encode(value)
    }

    /// Encodes a value as UTF-8 JSON: compact by default, two-space indented when `pretty`.
    public static func encode<T: Encodable>(_ value: T, pretty: Bool = false) throws -> [UInt8] {
        JSONWriter.write(try TreeEncoder.encode(value), pretty: pretty)
    }

    /// Serialises a tree as UTF-8 JSON.
    public static func serialize(_ tree: JSONValue, pretty: Bool = false) -> [UInt8] {
        JSONWriter.write(tree, pretty: pretty)
    }
}
