/// A Kubernetes resource quantity (`500m`, `128Mi`, `1.5`, `2e3`) held exactly.
///
/// The value is kept in nano units (10⁻⁹) as a 128-bit integer: every quantity Kubernetes can
/// represent to nano precision up to ±1.7·10²⁹ fits, so parsing, arithmetic and comparison are
/// exact. Precision finer than 1n is rounded up (away from zero), as Kubernetes does, so a
/// request for "some" resource never becomes zero. Binary quantities are capped at 2⁶³−1, as in
/// Kubernetes. Output is the canonical form: no fractional digits, the largest suffix that loses
/// nothing (`1.5` → `1500m`, `1.5Gi` → `1536Mi`).
public struct Quantity: Sendable, Hashable, Comparable {
    /// The notation a quantity is written in; kept from parsing so output uses the same family.
    public enum Format: String, Sendable {
        /// Powers of 1024: `Ki Mi Gi Ti Pi Ei`.
        case binarySI = "BinarySI"
        /// Powers of 1000: `n u m "" k M G T P E`.
        case decimalSI = "DecimalSI"
        /// `e<exponent>` notation: `1e3`, `5e-3`.
        case decimalExponent = "DecimalExponent"
    }

    /// The value in units of 10⁻⁹.
    public private(set) var nanoUnits: Int128
    public var format: Format

    static let nanosPerUnit: Int128 = 1_000_000_000
    /// Kubernetes caps binary quantities at the largest int64.
    static let maximumBinaryNanos: Int128 = Int128(Int64.max) * nanosPerUnit

    /// A quantity of `nanoUnits` × 10⁻⁹.
    public init(nanoUnits: Int128, format: Format = .decimalSI) {
        self.nanoUnits = nanoUnits
        self.format = format
    }

    /// A whole number of units (bytes, cores, …).
    public init(_ value: Int64, format: Format = .decimalSI) {
        self.init(nanoUnits: Int128(value) * Self.nanosPerUnit, format: format)
    }

    /// A number of thousandths (milliCPU).
    public init(milli value: Int64, format: Format = .decimalSI) {
        self.init(nanoUnits: Int128(value) * 1_000_000, format: format)
    }

    /// A number of bytes, written with binary suffixes.
    public static func bytes(_ count: Int64) -> Quantity { Quantity(count, format: .binarySI) }

    public static let zero = Quantity(nanoUnits: 0)

    public var isZero: Bool { nanoUnits == 0 }
    /// -1, 0 or 1.
    public var sign: Int { nanoUnits == 0 ? 0 : (nanoUnits < 0 ? -1 : 1) }

    /// The value rounded up (away from zero) to a whole number, saturated to the Int64 range.
    /// For memory and storage this is the number of bytes.
    public var value: Int64 { Self.scaled(nanoUnits, divisor: Self.nanosPerUnit) }

    /// The value in thousandths rounded up (away from zero), saturated: milliCPU for CPU.
    public var milliValue: Int64 { Self.scaled(nanoUnits, divisor: 1_000_000) }

    /// The value in bytes (``value``); named for readability at memory and storage call sites.
    public var byteCount: Int64 { value }

    /// An approximation as a Double (for display and ratios, never for decisions).
    public var doubleValue: Double { Double(nanoUnits) / 1e9 }

    private static func scaled(_ nanos: Int128, divisor: Int128) -> Int64 {
        let (quotient, remainder) = nanos.quotientAndRemainder(dividingBy: divisor)
        let rounded = remainder == 0 ? quotient : (nanos > 0 ? quotient + 1 : quotient - 1)
        if rounded > Int128(Int64.max) { return Int64.max }
        if rounded < Int128(Int64.min) { return Int64.min }
        return Int64(rounded)
    }

    public static func == (lhs: Quantity, rhs: Quantity) -> Bool { lhs.nanoUnits == rhs.nanoUnits }
    public static func < (lhs: Quantity, rhs: Quantity) -> Bool { lhs.nanoUnits < rhs.nanoUnits }
    public func hash(into hasher: inout Hasher) { hasher.combine(nanoUnits) }
}

extension Quantity: Codable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text: String
        if let tree = decoder as? any JSONTreeDecoding, case .number(let literal) = tree.node {
            text = literal
        } else if let string = try? container.decode(String.self) {
            text = string.trimmingASCIIWhitespace()
        } else if let number = try? container.decode(Int64.self) {
            text = String(number)
        } else if let number = try? container.decode(Double.self) {
            text = String(number)
        } else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "expected a quantity (string or number)")
        }
        do {
            self = try Quantity(parsing: text)
        } catch {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: error.description)
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

extension Quantity: ExpressibleByStringLiteral {
    /// A quantity from a literal; a malformed literal is a programming error and traps.
    public init(stringLiteral value: String) {
        do {
            self = try Quantity(parsing: value)
        } catch {
            preconditionFailure("invalid quantity literal: \(error)")
        }
    }
}

extension String {
    func trimmingASCIIWhitespace() -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }
        guard let first = firstIndex(where: { !isSpace($0) }), let last = lastIndex(where: { !isSpace($0) }) else { return "" }
        return String(self[first...last])
    }
}
