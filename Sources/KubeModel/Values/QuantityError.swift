/// Why a string is not a quantity.
public struct QuantityError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Reason: Sendable, Equatable {
        case empty
        case malformedNumber
        case unknownSuffix(String)
        case outOfRange
        case tooManyDigits
    }

    public var input: String
    public var reason: Reason

    public var description: String {
        let detail: String
        switch reason {
        case .empty: detail = "empty"
        case .malformedNumber: detail = "the number is malformed"
        case .unknownSuffix(let suffix):
            detail = "unknown suffix \"\(suffix)\" (use n u m k M G T P E, Ki Mi Gi Ti Pi Ei, or e<exponent>)"
        case .outOfRange: detail = "out of range (at most ±1.7e29 with nano precision)"
        case .tooManyDigits: detail = "more than 38 significant digits"
        }
        return "\"\(input)\" is not a quantity: \(detail)"
    }
}
