/// A closed set of string values from the Kubernetes API (`restartPolicy`, `protocol`, …).
///
/// Decoding a value outside the set fails with a message listing the allowed values, so a
/// typo in a manifest is reported at its field instead of being run with a guessed meaning.
public protocol KubeEnum: RawRepresentable, CaseIterable, Codable, Sendable, Hashable where RawValue == String {}

extension KubeEnum {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let raw = try container.decode(String.self)
        guard let value = Self(rawValue: raw) else {
            let allowed = Self.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", ")
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "unsupported value \"\(raw)\": supported values: \(allowed)")
        }
        self = value
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
}
