/// `DeleteOptions.gracePeriodSeconds` read as kube-apiserver reads it, from the query string or
/// the request body: a whole number in the Int64 range, anything else is a field error.
public enum DeleteOptionsValidation {
    /// The grace period a delete request asks for; nil when it names none.
    /// - Throws: ``FieldValidationError`` naming `gracePeriodSeconds` when the value is not an Int64.
    public static func gracePeriodSeconds(query: String?, body: JSONValue) throws(FieldValidationError) -> Int64? {
        if let query {
            guard let seconds = Int64(query) else { throw invalid(query) }
            return seconds
        }
        switch body[path: ["gracePeriodSeconds"]] {
        case nil, .null?: return nil
        case .number(let literal)?:
            guard let seconds = Int64(literal) else { throw invalid(literal) }
            return seconds
        case let other?: throw invalid("\(other)")
        }
    }

    /// The grace period a bound pod gets, as the pod strategy of kube-apiserver decides it: the
    /// request's, else the pod's `terminationGracePeriodSeconds`, else 30; a negative period is 1.
    public static func podGracePeriod(requested: Int64?, podDefault: Int64?) -> Int64 {
        let period = requested ?? podDefault ?? 30
        return period < 0 ? 1 : period
    }

    private static func invalid(_ text: String) -> FieldValidationError {
        FieldValidationError(StatusCause(reason: "FieldValueInvalid", message: "Invalid value: \"\(text.prefix(64))\": must be a whole number of seconds between \(Int64.min) and \(Int64.max)", field: "gracePeriodSeconds"))
    }
}

/// A request value that breaks one of the API's field rules, as a 422 cause.
public struct FieldValidationError: Error, Sendable, Equatable {
    public var cause: StatusCause
    public init(_ cause: StatusCause) { self.cause = cause }
}
