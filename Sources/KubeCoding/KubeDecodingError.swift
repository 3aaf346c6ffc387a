/// Why a JSON or YAML document could not become a Kubernetes object, and where.
///
/// `description` reads like the API server's own field errors:
/// `spec.containers[1].resources.limits.memory: "12Qi" is not a quantity: unknown suffix "Qi"`.
public struct KubeDecodingError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What kind of problem this is.
    public enum Kind: String, Sendable {
        /// The text is not well-formed JSON or YAML.
        case syntax
        /// A value has the wrong JSON type (a string where a number belongs, …).
        case typeMismatch
        /// A required field is absent or null.
        case missingField
        /// A value has the right type but is not acceptable (bad quantity, unknown enum value, …).
        case invalidValue
        /// Strict decoding found fields the model does not know, or duplicate keys.
        case unknownField
    }

    public var kind: Kind
    /// The field path in Kubernetes notation (`spec.containers[0].image`); empty for the document itself.
    public var path: String
    public var message: String
    /// The 1-based position of the document in a multi-document YAML stream, when there is one.
    public var document: Int?

    public init(kind: Kind, path: String, message: String, document: Int? = nil) {
        self.kind = kind
        self.path = path
        self.message = message
        self.document = document
    }

    public var description: String {
        let location = document.map { "document \($0): " } ?? ""
        return location + (path.isEmpty ? message : "\(path): \(message)")
    }
}

extension KubeDecodingError {
    /// Converts a Swift `DecodingError` (thrown by a type's own `init(from:)`) into a typed error.
    init(_ error: DecodingError) {
        switch error {
        case .dataCorrupted(let context):
            self.init(kind: .invalidValue, path: FieldPath.format(context.codingPath), message: context.debugDescription)
        case .keyNotFound(let key, let context):
            self.init(kind: .missingField, path: FieldPath.format(context.codingPath + [key]), message: "required value is missing")
        case .typeMismatch(let type, let context):
            self.init(kind: .typeMismatch, path: FieldPath.format(context.codingPath), message: "expected \(type): \(context.debugDescription)")
        case .valueNotFound(let type, let context):
            self.init(kind: .missingField, path: FieldPath.format(context.codingPath), message: "expected \(type), found nothing")
        @unknown default:
            self.init(kind: .invalidValue, path: "", message: String(describing: error))
        }
    }
}

/// Formats coding paths the way Kubernetes field errors write them.
enum FieldPath {
    /// `spec.containers[1].resources.limits.memory`; map keys that are not plain words are
    /// bracketed: `metadata.labels[app.kubernetes.io/name]`.
    static func format(_ path: [any CodingKey]) -> String {
        var text = ""
        for key in path {
            if let index = key.intValue, key.stringValue == String(index) || key.stringValue.hasPrefix("Index ") {
                text += "[\(index)]"
            } else if isPlainWord(key.stringValue) {
                text += text.isEmpty ? key.stringValue : "." + key.stringValue
            } else {
                text += "[\(key.stringValue)]"
            }
        }
        return text
    }

    private static func isPlainWord(_ text: String) -> Bool {
        !text.isEmpty && text.utf8.allSatisfy { byte in
            (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
                || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-")
                || byte == UInt8(ascii: "$")
        }
    }
}
