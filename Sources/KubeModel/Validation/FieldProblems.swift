/// Collects field errors worded as kube-apiserver's `field.Invalid` (422 causes).
struct FieldProblems {
    private(set) var causes: [StatusCause] = []

    mutating func invalid(_ field: String, _ value: String, _ message: String) {
        causes.append(StatusCause(reason: "FieldValueInvalid", message: "Invalid value: \(value): \(message)", field: field))
    }

    /// `value` must lie in `range` (kube's InclusiveRangeError wording).
    mutating func inRange<Number: BinaryInteger>(_ value: Number?, _ range: ClosedRange<Int64>, _ field: String) {
        guard let value else { return }
        if Int64(exactly: value).map(range.contains) != true {
            invalid(field, "\(value)", "must be between \(range.lowerBound) and \(range.upperBound), inclusive")
        }
    }

    /// `value` must be at least `minimum`.
    mutating func atLeast<Number: BinaryInteger>(_ value: Number?, _ minimum: Int64, _ field: String) {
        guard let value, value < minimum else { return }
        invalid(field, "\(value)", minimum == 1 ? "must be greater than 0" : "must be greater than or equal to \(minimum)")
    }

    /// A file mode of a volume (`defaultMode`, `mode`): 0 to 0777.
    mutating func fileMode(_ value: Int32?, _ field: String) {
        guard let value, !(0...0o777).contains(value) else { return }
        invalid(field, "\(value)", "must be a number between 0 and 0777 (octal), both inclusive")
    }

    /// A user or group ID: 0 to 2³¹−1.
    mutating func userOrGroupID(_ value: Int64?, _ field: String) {
        guard let value, !(0...Int64(Int32.max)).contains(value) else { return }
        invalid(field, "\(value)", "must be between 0 and \(Int32.max), inclusive")
    }

    /// Every quantity of a resource list must be non-negative.
    mutating func nonNegative(_ quantities: [String: Quantity]?, _ field: String) {
        for (name, quantity) in quantities ?? [:] where quantity.sign < 0 {
            invalid("\(field)[\(name)]", "\"\(quantity)\"", "must be greater than or equal to 0")
        }
    }
}
