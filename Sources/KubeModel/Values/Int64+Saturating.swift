/// Arithmetic on numbers that come from outside (pod requests, node capacity, grace periods):
/// results clamp at the ends of the range instead of trapping, so no input can stop a program.
/// (`Quantity`'s own `+`, `-` and `×` saturate too, and its `value`/`milliValue` clamp.)
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
