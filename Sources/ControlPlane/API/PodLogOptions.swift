import KubeModel

/// The query of `pods/<name>/log`, parsed and validated as kube-apiserver does: a value that is
/// not a boolean or an integer is 400 BadRequest (its parameter codec), a value out of range is
/// 422 Invalid naming the field (`ValidatePodLogOptions`). Only the parsed values reach the
/// agent, so no text from the request is passed on.
struct PodLogOptions: Equatable {
    var container: String?
    var follow = false
    var previous = false
    var timestamps = false
    var tailLines: Int64?
    var limitBytes: Int64?
    var sinceSeconds: Int64?
    var sinceTime: Timestamp?

    init(query: [String: String], pod: String) throws {
        container = query["container"]
        follow = try Self.boolean(query["follow"])
        previous = try Self.boolean(query["previous"])
        timestamps = try Self.boolean(query["timestamps"])
        tailLines = try Self.integer(query["tailLines"])
        limitBytes = try Self.integer(query["limitBytes"])
        sinceSeconds = try Self.integer(query["sinceSeconds"])
        if let text = query["sinceTime"] {
            do { sinceTime = try Timestamp(rfc3339: text) } catch {
                throw APIError.badRequest("parsing time \"\(text)\" as \"2006-01-02T15:04:05Z07:00\": cannot parse")
            }
        }
        var causes: [StatusCause] = []
        func invalid(_ field: String, _ value: Int64, _ why: String) {
            causes.append(StatusCause(reason: "FieldValueInvalid", message: "Invalid value: \(value): \(why)", field: field))
        }
        if let tailLines, tailLines < 0 { invalid("tailLines", tailLines, "must be greater than or equal to 0") }
        if let limitBytes, limitBytes < 1 { invalid("limitBytes", limitBytes, "must be greater than 0") }
        if sinceSeconds != nil, sinceTime != nil {
            causes.append(StatusCause(reason: "FieldValueForbidden", message: "Forbidden: at most one of `sinceTime` or `sinceSeconds` may be specified", field: ""))
        }
        if let sinceSeconds, sinceSeconds < 1 { invalid("sinceSeconds", sinceSeconds, "must be greater than 0") }
        guard causes.isEmpty else {
            let summary = causes.map { ($0.field?.isEmpty == false ? "\($0.field!): " : "") + ($0.message ?? "") }.joined(separator: ", ")
            throw APIError(code: 422, reason: "Invalid", message: "PodLogOptions \"\(pod)\" is invalid: [\(summary)]",
                           details: StatusDetails(name: pod, group: "", kind: "PodLogOptions", causes: causes))
        }
    }

    /// The agent's `/containerLogs` query, from the parsed values only.
    var agentQuery: String {
        var items: [String] = []
        if follow { items.append("follow=true") }
        if previous { items.append("previous=true") }
        if timestamps { items.append("timestamps=true") }
        if let tailLines { items.append("tailLines=\(tailLines)") }
        if let limitBytes { items.append("limitBytes=\(limitBytes)") }
        if let sinceSeconds { items.append("sinceSeconds=\(sinceSeconds)") }
        if let sinceTime { items.append("sinceTime=\(Self.percentEncoded(sinceTime.description))") }
        return items.joined(separator: "&")
    }

    /// Go's strconv.ParseBool spellings; absent is false.
    static func boolean(_ text: String?) throws -> Bool {
        guard let text else { return false }
        switch text {
        case "1", "t", "T", "true", "TRUE", "True": return true
        case "0", "f", "F", "false", "FALSE", "False", "": return false
        default: throw APIError.badRequest("strconv.ParseBool: parsing \"\(text)\": invalid syntax")
        }
    }

    /// A decimal Int64 (Go's strconv.ParseInt); absent is nil.
    static func integer(_ text: String?) throws -> Int64? {
        guard let text else { return nil }
        let digits = text.hasPrefix("-") || text.hasPrefix("+") ? text.utf8.dropFirst() : text.utf8[...]
        guard !digits.isEmpty, digits.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }) else {
            throw APIError.badRequest("strconv.ParseInt: parsing \"\(text)\": invalid syntax")
        }
        guard let value = Int64(text) else { throw APIError.badRequest("strconv.ParseInt: parsing \"\(text)\": value out of range") }
        return value
    }

    /// Percent-encodes everything but RFC 3986 unreserved characters (for a path segment or a
    /// query value).
    static func percentEncoded(_ text: String) -> String {
        var result = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                result.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                result += "%" + (byte < 16 ? "0" : "") + String(byte, radix: 16, uppercase: true)
            }
        }
        return result
    }
}
