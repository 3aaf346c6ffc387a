/// Arithmetic on amounts that come from outside (pod requests, node capacity, grace periods):
/// results clamp at the ends of the range instead of trapping, so no input can stop a program.
extension Quantity {
    /// The value in thousandths (milliCPU), clamped to the Int64 range; never traps.
    public var milliValueClamped: Int64 { milliValue }

    /// The whole value (bytes for memory), clamped to the Int64 range; never traps.
    public var valueClamped: Int64 { value }

    /// The sum, clamped to the representable range instead of trapping.
    public func addingSaturated(_ other: Quantity) -> Quantity {
        let (sum, overflow) = nanoUnits.addingReportingOverflow(other.nanoUnits)
        let format = isZero ? other.format : format
        guard overflow else { return Quantity(nanoUnits: sum, format: format) }
        return Quantity(nanoUnits: other.nanoUnits > 0 ? .max : .min, format: format)
    }

    /// The sum of `quantities`, or nil if it leaves the representable range.
    public static func checkedSum(_ quantities: some Sequence<Quantity>) -> Quantity? {
        var total = Quantity.zero
        for quantity in quantities {
            guard let next = total.addingReportingOverflow(quantity) else { return nil }
            total = next
        }
        return total
    }
}

extension Int64 {
    /// `self + other`, clamped to the Int64 range instead of trapping.
    public func addingSaturated(_ other: Int64) -> Int64 {
        let (sum, overflow) = addingReportingOverflow(other)
        return overflow ? (other > 0 ? .max : .min) : sum
    }

    /// `self - other`, clamped to the Int64 range instead of trapping.
    public func subtractingSaturated(_ other: Int64) -> Int64 {
        let (difference, overflow) = subtractingReportingOverflow(other)
        return overflow ? (other < 0 ? .max : .min) : difference
    }

    /// `self × other`, clamped to the Int64 range instead of trapping.
    public func multipliedSaturated(by other: Int64) -> Int64 {
        let (product, overflow) = multipliedReportingOverflow(by: other)
        return overflow ? ((self < 0) == (other < 0) ? .max : .min) : product
    }
}

extension Sequence where Element == Int64 {
    /// The sum, clamped to the Int64 range instead of trapping.
    public func saturatingSum() -> Int64 { reduce(0) { $0.addingSaturated($1) } }
}
