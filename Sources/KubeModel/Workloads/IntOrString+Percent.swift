extension IntOrString {
    /// The percentage of `N%` (digits only, at most 2³¹−1), nil when not a percent string.
    public var percent: Int64? {
        guard case .string(let text) = self, text.hasSuffix("%") else { return nil }
        let digits = text.dropLast()
        guard !digits.isEmpty, digits.count <= 10, digits.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
              let value = Int64(digits), value <= Int64(Int32.max) else { return nil }
        return value
    }

    /// The value against `total` (`maxSurge` rounds up, `maxUnavailable` down), as the
    /// deployment controller resolves it; nil for a malformed value (validation refuses those).
    public func scaledValue(total: Int32, roundUp: Bool) -> Int64? {
        switch self {
        case .int(let value): return Int64(value)
        case .string:
            guard let percent else { return nil }
            let product = percent * Int64(total)  // both below 2³¹: no overflow in 64 bits
            return roundUp ? (product + 99) / 100 : product / 100
        }
    }
}
