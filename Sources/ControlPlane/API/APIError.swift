import KubeModel

/// An API failure as the Kubernetes API reports it: an HTTP code, a reason and a message,
/// written to clients as a `Status` object.
public struct APIError: Error, Sendable, CustomStringConvertible {
    public var code: Int
    public var reason: String
    public var message: String
    public var details: StatusDetails?

    public init(code: Int, reason: String, message: String, details: StatusDetails? = nil) {
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
    }

    public var description: String { "\(code) \(reason): \(message)" }

    /// The Status object for this error.
    public var status: Status { Status(code: Int32(code), reason: reason, message: message, details: details) }

    static func notFound(_ resource: ResourceType, _ name: String) -> APIError {
        APIError(code: 404, reason: "NotFound", message: "\(resource.qualifiedName) \"\(name)\" not found",
                 details: StatusDetails(name: name, group: resource.group, kind: resource.plural))
    }

    static func alreadyExists(_ resource: ResourceType, _ name: String) -> APIError {
        APIError(code: 409, reason: "AlreadyExists", message: "\(resource.qualifiedName) \"\(name)\" already exists",
                 details: StatusDetails(name: name, group: resource.group, kind: resource.plural))
    }

    static func conflict(_ resource: ResourceType, _ name: String, _ why: String) -> APIError {
        APIError(code: 409, reason: "Conflict",
                 message: "Operation cannot be fulfilled on \(resource.qualifiedName) \"\(name)\": \(why)",
                 details: StatusDetails(name: name, group: resource.group, kind: resource.plural))
    }

    static func invalid(_ resource: ResourceType, _ name: String, _ causes: [StatusCause]) -> APIError {
        let summary = causes.map { "\($0.field ?? ""): \($0.message ?? "")" }.joined(separator: ", ")
        // kube-apiserver names the kind with its group: `Deployment.apps "web" is invalid`.
        let kind = resource.group.isEmpty ? resource.kind : "\(resource.kind).\(resource.group)"
        return APIError(code: 422, reason: "Invalid", message: "\(kind) \"\(name)\" is invalid: [\(summary)]",
                        details: StatusDetails(name: name, group: resource.group, kind: resource.kind, causes: causes))
    }

    static func badRequest(_ message: String) -> APIError { APIError(code: 400, reason: "BadRequest", message: message) }
    static func gone(_ message: String) -> APIError { APIError(code: 410, reason: "Expired", message: message) }
    static func methodNotAllowed(_ message: String) -> APIError { APIError(code: 405, reason: "MethodNotAllowed", message: message) }
    static func unauthorized() -> APIError { APIError(code: 401, reason: "Unauthorized", message: "Unauthorized") }
    static func forbidden(_ message: String) -> APIError { APIError(code: 403, reason: "Forbidden", message: message) }
    static func internalError(_ message: String) -> APIError { APIError(code: 500, reason: "InternalError", message: message) }
}
