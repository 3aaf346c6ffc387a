/// YAML coding of Kubernetes manifests: single documents and `---` separated streams.
public enum KubeYAML {
    /// Parses every non-empty document of a YAML stream into trees.
    public static func documents(_ bytes: [UInt8]) throws(KubeDecodingError) -> [JSONValue] {
        try YAMLParser.parseStream(bytes)
    }

    /// The 1-based line of every field of the first document, by field path
    /// (`spec.containers[0].image`), to say where a ``KubeDecodingError`` is.
    public static func lines(_ bytes: [UInt8]) -> [String: Int] { YAMLParser.lines(bytes) }

    /// Decodes the single document of `text` as `type`.
    public static func decode<T: Decodable>(
        _ type: T.Type, from text: String, validation: FieldValidation = .preserve
    ) throws(KubeDecodingError) -> T {
        try decode(type, from: Array(text.utf8), validation: validation)
    }

    /// Decodes the single document of `bytes` as `type`.
    public static func decode<T: Decodable>(
        _ type: T.Type, from bytes: [UInt8], validation: FieldValidation = .preserve
    ) throws(KubeDecodingError) -> T {
        let trees = try documents(bytes)
        guard trees.count == 1 else {
            throw KubeDecodingError(kind: .syntax, path: "", message: "expected one YAML document, found \(trees.count)")
        }
        return try KubeJSON.decode(type, from: trees[0], validation: validation)
    }

    /// Decodes every document of a stream as `type`; an error names the document's position.
    public static func decodeAll<T: Decodable>(
        _ type: T.Type, from bytes: [UInt8], validation: FieldValidation = .preserve
    ) throws(KubeDecodingError) -> [T] {
        var results: [T] = []
        for (position, tree) in try documents(bytes).enumerated() {
            do {
                results.append(try KubeJSON.decode(type, from: tree, validation: validation))
            } catch {
                var located = error
                located.document = position + 1
                throw located
            }
        }
        return results
    }
}
