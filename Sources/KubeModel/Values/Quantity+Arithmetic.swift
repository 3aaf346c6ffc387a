extension Quantity {
    /// The sum; the format is the left side's unless it is zero (then the right side's), as in Kubernetes.
    /// Traps on overflow beyond ±1.7·10²⁹, far outside any resource amount.
    public static func + (lhs: Quantity, rhs: Quantity) -> Quantity {
        Quantity(nanoUnits: lhs.nanoUnits + rhs.nanoUnits, format: lhs.isZero ? rhs.format : lhs.format)
    }

    public static func - (lhs: Quantity, rhs: Quantity) -> Quantity {
        Quantity(nanoUnits: lhs.nanoUnits - rhs.nanoUnits, format: lhs.isZero ? rhs.format : lhs.format)
    }

    public static prefix func - (operand: Quantity) -> Quantity {
        Quantity(nanoUnits: -operand.nanoUnits, format: operand.format)
    }

    public static func * (lhs: Quantity, rhs: Int64) -> Quantity {
        Quantity(nanoUnits: lhs.nanoUnits * Int128(rhs), format: lhs.format)
    }

    public static func += (lhs: inout Quantity, rhs: Quantity) { lhs = lhs + rhs }
    public static func -= (lhs: inout Quantity, rhs: Quantity) { lhs = lhs - rhs }

    /// The sum, or nil if it would overflow (for totals built from untrusted input).
    public func addingReportingOverflow(_ other: Quantity) -> Quantity? {
        let (sum, overflow) = nanoUnits.addingReportingOverflow(other.nanoUnits)
        return overflow ? nil : Quantity(nanoUnits: sum, format: isZero ? other.format : format)
    }
}
