extension Quantity {
    /// Parses the Kubernetes quantity grammar: `[+-]digits[.digits][suffix]` with a decimal SI
    /// suffix, a binary SI suffix or an `e`/`E` exponent. Leading or trailing spaces are errors.
    public init(parsing text: String) throws(QuantityError) {
        let bytes = Array(text.utf8)
        guard !bytes.isEmpty else { throw QuantityError(input: text, reason: .empty) }
        var position = 0
        var negative = false
        if bytes[0] == UInt8(ascii: "-") || bytes[0] == UInt8(ascii: "+") {
            negative = bytes[0] == UInt8(ascii: "-")
            position = 1
        }
        let integerStart = position
        while position < bytes.count, Self.isDigit(bytes[position]) { position += 1 }
        var integerDigits = Array(bytes[integerStart..<position])
        var fractionDigits: [UInt8] = []
        if position < bytes.count, bytes[position] == UInt8(ascii: ".") {
            position += 1
            let fractionStart = position
            while position < bytes.count, Self.isDigit(bytes[position]) { position += 1 }
            fractionDigits = Array(bytes[fractionStart..<position])
        }
        let suffix = String(decoding: bytes[position...], as: UTF8.self)
        guard let (base, exponent, format) = Self.interpret(suffix: suffix) else {
            throw QuantityError(input: text, reason: .unknownSuffix(suffix))
        }

        while integerDigits.first == UInt8(ascii: "0") { integerDigits.removeFirst() }
        while fractionDigits.last == UInt8(ascii: "0") { fractionDigits.removeLast() }

        var nanos: Int128
        var resultFormat = format
        if base == 10 {
            nanos = try Self.decimalNanos(integer: integerDigits, fraction: fractionDigits, exponent: exponent, input: text)
        } else {
            nanos = try Self.binaryNanos(integer: integerDigits, fraction: fractionDigits, shift: exponent, input: text)
            if nanos > 0 && nanos < Self.nanosPerUnit { resultFormat = .decimalSI }
        }
        if negative { nanos = -nanos }
        self.init(nanoUnits: nanos, format: resultFormat)
    }

    /// The base, exponent and format a suffix stands for; nil when it is not a suffix.
    static func interpret(suffix: String) -> (base: Int, exponent: Int, format: Format)? {
        switch suffix {
        case "": return (10, 0, .decimalSI)
        case "n": return (10, -9, .decimalSI)
        case "u": return (10, -6, .decimalSI)
        case "m": return (10, -3, .decimalSI)
        case "k": return (10, 3, .decimalSI)
        case "M": return (10, 6, .decimalSI)
        case "G": return (10, 9, .decimalSI)
        case "T": return (10, 12, .decimalSI)
        case "P": return (10, 15, .decimalSI)
        case "E": return (10, 18, .decimalSI)
        case "Ki": return (2, 10, .binarySI)
        case "Mi": return (2, 20, .binarySI)
        case "Gi": return (2, 30, .binarySI)
        case "Ti": return (2, 40, .binarySI)
        case "Pi": return (2, 50, .binarySI)
        case "Ei": return (2, 60, .binarySI)
        default: break
        }
        var rest = Substring(suffix)
        guard rest.first == "e" || rest.first == "E" else { return nil }
        rest.removeFirst()
        var negative = false
        if rest.first == "+" || rest.first == "-" {
            negative = rest.first == "-"
            rest.removeFirst()
        }
        guard !rest.isEmpty, rest.utf8.allSatisfy(isDigit) else { return nil }
        // Exponents beyond ±10⁶ are clamped: they only decide between overflow and rounding to 1n.
        let magnitude = rest.count > 7 ? 1_000_000 : min(Int(rest)!, 1_000_000)
        return (10, negative ? -magnitude : magnitude, .decimalExponent)
    }

    /// `integer.fraction × 10^exponent` in nano units, rounded up to 1n.
    private static func decimalNanos(integer: [UInt8], fraction: [UInt8], exponent: Int, input: String) throws(QuantityError) -> Int128 {
        let digits = integer + fraction
        guard digits.contains(where: { $0 != UInt8(ascii: "0") }) else { return 0 }
        // The digits before the nano point: the integer digits shifted by the exponent, plus nine.
        let kept = integer.count + exponent + 9
        if kept <= 0 { return 1 }
        var nanos: Int128 = 0
        for offset in 0..<kept {
            let digit: Int128 = offset < digits.count ? Int128(digits[offset] - UInt8(ascii: "0")) : 0
            let (shifted, overflowTimes) = nanos.multipliedReportingOverflow(by: 10)
            let (sum, overflowPlus) = shifted.addingReportingOverflow(digit)
            guard !overflowTimes, !overflowPlus else { throw QuantityError(input: input, reason: .outOfRange) }
            nanos = sum
        }
        if kept < digits.count, digits[kept...].contains(where: { $0 != UInt8(ascii: "0") }) { nanos += 1 }
        return nanos
    }

    /// `integer.fraction × 2^shift` in nano units, rounded up to 1n, capped at 2⁶³−1 units.
    private static func binaryNanos(integer: [UInt8], fraction: [UInt8], shift: Int, input: String) throws(QuantityError) -> Int128 {
        var digits = integer + fraction
        while digits.first == UInt8(ascii: "0") { digits.removeFirst() }
        guard !digits.isEmpty else { return 0 }
        guard digits.count <= 38 else { throw QuantityError(input: input, reason: .tooManyDigits) }
        var mantissa: Int128 = 0
        for digit in digits { mantissa = mantissa * 10 + Int128(digit - UInt8(ascii: "0")) }

        if fraction.count <= 9 {
            let (scaled, overflow) = mantissa.multipliedReportingOverflow(by: power10(9 - fraction.count))
            guard !overflow, scaled <= maximumBinaryNanos >> shift else { return maximumBinaryNanos }
            return min(scaled << shift, maximumBinaryNanos)
        }
        // More fractional digits than nano precision: divide first, then shift the remainder in
        // bit by bit so nothing overflows, and round any leftover up.
        let divisor = power10(fraction.count - 9)
        let (quotient, remainderStart) = mantissa.quotientAndRemainder(dividingBy: divisor)
        guard quotient <= maximumBinaryNanos >> shift else { return maximumBinaryNanos }
        var remainder = remainderStart
        var fractionBits: Int128 = 0
        for _ in 0..<shift {
            remainder <<= 1
            fractionBits <<= 1
            if remainder >= divisor {
                remainder -= divisor
                fractionBits |= 1
            }
        }
        let nanos = (quotient << shift) + fractionBits + (remainder > 0 ? 1 : 0)
        return min(nanos, maximumBinaryNanos)
    }

    static func power10(_ exponent: Int) -> Int128 {
        var result: Int128 = 1
        for _ in 0..<exponent { result *= 10 }
        return result
    }

    static func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }
}
