extension Quantity {
    /// The sum; the format is the left side's unless it is zero (then the right side's), as in Kubernetes.
    /// Saturates beyond ±1.7·10²⁹ (far outside any resource amount) instead of trapping: the
    /// operands come from manifests, the API and agent.yaml.
    public static func + (lhs: Quantity, rhs: Quantity) -> Quantity {
        let (sum, overflow) = lhs.nanoUnits.addingReportingOverflow(rhs.nanoUnits)
        return Quantity(nanoUnits: overflow ? (rhs.nanoUnits > 0 ? .max : .min) : sum, format: lhs.isZero ? rhs.format : lhs.format)
    }

    public static func - (lhs: Quantity, rhs: Quantity) -> Quantity {
        let (difference, overflow) = lhs.nanoUnits.subtractingReportingOverflow(rhs.nanoUnits)
        return Quantity(nanoUnits: overflow ? (rhs.nanoUnits < 0 ? .max : .min) : difference, format: lhs.isZero ? rhs.format : lhs.format)
    }

    public static prefix func - (operand: Quantity) -> Quantity {
        Quantity(nanoUnits: operand.nanoUnits == .min ? .max : -operand.nanoUnits, format: operand.format)
    }

    public static func * (lhs: Quantity, rhs: Int64) -> Quantity {
        let (product, overflow) = lhs.nanoUnits.multipliedReportingOverflow(by: Int128(rhs))
        return Quantity(nanoUnits: overflow ? ((lhs.nanoUnits < 0) == (rhs < 0) ? .max : .min) : product, format: lhs.format)
    }

    public static func += (lhs: inout Quantity, rhs: Quantity) { lhs = lhs + rhs }
    public static func -= (lhs: inout Quantity, rhs: Quantity) { lhs = lhs - rhs }

    /// The sum, or nil if it would overflow (for totals built from untrusted input).
    public func addingReportingOverflow(_ other: Quantity) -> Quantity? {
        let (sum, overflow) = nanoUnits.addingReportingOverflow(other.nanoUnits)
        return overflow ? nil : Quantity(nanoUnits: sum, format: isZero ? other.format : format)
    }
}
