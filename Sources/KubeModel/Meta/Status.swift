/// The API's error and result object (`metav1.Status`).
public struct Status: KubeObject, Error, CustomStringConvertible {
    public static let apiVersion = "v1"
    public static let kind = "Status"

    public var apiVersion: String? = Status.apiVersion
    public var kind: String? = Status.kind
    /// Status objects carry list metadata; exposed as ``listMetadata``.
    public var listMetadata = ListMeta()
    /// `Success` or `Failure`.
    public var status: String?
    public var message: String?
    /// A machine-readable reason: `NotFound`, `AlreadyExists`, `Conflict`, `Invalid`, `Expired`, …
    public var reason: String?
    public var details: StatusDetails?
    /// The HTTP status code.
    public var code: Int32?
    public var unknownFields = UnknownFields()

    public init(code: Int32, reason: String, message: String, details: StatusDetails? = nil) {
        self.status = code < 400 ? "Success" : "Failure"
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
    }

    /// Status has ListMeta, not ObjectMeta; this view satisfies ``KubeObject`` without a name.
    public var metadata: ObjectMeta {
        get { ObjectMeta() }
        set {}
    }

    public var description: String { "\(code.map(String.init) ?? "?") \(reason ?? ""): \(message ?? "")" }

    enum CodingKeys: String, CodingKey {
        case apiVersion, kind, status, message, reason, details, code, unknownFields
        case listMetadata = "metadata"
    }
}

/// Extra detail about a ``Status``: which object, and which fields were at fault.
public struct StatusDetails: Codable, Sendable, Hashable {
    public var name: String?
    public var group: String?
    public var kind: String?
    public var uid: String?
    public var causes: [StatusCause]?
    public var retryAfterSeconds: Int32?
    public var unknownFields = UnknownFields()

    public init(name: String? = nil, group: String? = nil, kind: String? = nil, causes: [StatusCause]? = nil) {
        self.name = name
        self.group = group
        self.kind = kind
        self.causes = causes
    }
}

/// One reason a request failed, usually naming a field.
public struct StatusCause: Codable, Sendable, Hashable {
    public var reason: String?
    public var message: String?
    public var field: String?
    public var unknownFields = UnknownFields()

    public init(reason: String? = nil, message: String? = nil, field: String? = nil) {
        self.reason = reason
        self.message = message
        self.field = field
    }
}
