extension Quantity: CustomStringConvertible {
    /// The canonical form: no fractional digits and the largest suffix that loses nothing.
    /// Binary quantities below 1024 or with a fractional part are written in decimal SI, as
    /// Kubernetes does.
    public var description: String {
        if nanoUnits == 0 { return "0" }
        let sign = nanoUnits < 0 ? "-" : ""
        let magnitude = nanoUnits.magnitude
        if format == .binarySI, magnitude >= 1024 * UInt128(Self.nanosPerUnit), magnitude % UInt128(Self.nanosPerUnit) == 0 {
            var units = magnitude / UInt128(Self.nanosPerUnit)
            var level = 0
            while level < 6, units % 1024 == 0 {
                units /= 1024
                level += 1
            }
            return sign + String(units) + ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"][level]
        }
        var mantissa = magnitude
        var exponent = -9
        while mantissa % 1000 == 0 {
            mantissa /= 1000
            exponent += 3
        }
        let suffix: String
        if format == .decimalExponent || exponent > 18 {
            suffix = exponent == 0 ? "" : "e\(exponent)"
        } else {
            suffix = ["n", "u", "m", "", "k", "M", "G", "T", "P", "E"][(exponent + 9) / 3]
        }
        return sign + String(mantissa) + suffix
    }
}
