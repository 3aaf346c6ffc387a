/// A value that is either an integer or a string (`port: 8080` or `port: http`; `maxUnavailable: 25%`).
public enum IntOrString: Sendable, Hashable, Codable, CustomStringConvertible {
    case int(Int32)
    case string(String)

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let tree = decoder as? any JSONTreeDecoding {
            switch tree.node {
            case .number: self = .int(try container.decode(Int32.self))
            case .string(let text): self = .string(text)
            default: throw tree.mismatch("integer or string")
            }
        } else if let number = try? container.decode(Int32.self) {
            self = .int(number)
        } else {
            self = .string(try container.decode(String.self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .int(let number): try container.encode(number)
        case .string(let text): try container.encode(text)
        }
    }

    public var description: String {
        switch self {
        case .int(let number): return String(number)
        case .string(let text): return text
        }
    }
}

extension IntOrString: ExpressibleByIntegerLiteral, ExpressibleByStringLiteral {
    public init(integerLiteral value: Int32) { self = .int(value) }
    public init(stringLiteral value: String) { self = .string(value) }
}
