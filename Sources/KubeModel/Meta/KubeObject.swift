/// A top-level API object: it has a kind, an API version and metadata.
public protocol KubeObject: Codable, Sendable, Hashable {
    /// The API version this type is served at, e.g. `v1` or `coordination.k8s.io/v1`.
    static var apiVersion: String { get }
    /// The kind, e.g. `Pod`.
    static var kind: String { get }
    /// The plural resource name in URLs, e.g. `pods` (defaults to the kind, lower-cased, plus "s").
    static var plural: String { get }

    /// The apiVersion written in the document; absent on items inside lists.
    var apiVersion: String? { get set }
    /// The kind written in the document; absent on items inside lists.
    var kind: String? { get set }
    var metadata: ObjectMeta { get set }
}

extension KubeObject {
    /// The plural resource name in URLs (`pods`, `leases`); metrics types override it.
    public static var plural: String { kind.lowercased() + "s" }

    /// The API group: empty for the core group.
    public static var group: String {
        guard let slash = apiVersion.firstIndex(of: "/") else { return "" }
        return String(apiVersion[..<slash])
    }

    /// `namespace/name`, or `name` for cluster-scoped objects.
    public var qualifiedName: String {
        if let namespace = metadata.namespace, !namespace.isEmpty { return "\(namespace)/\(metadata.name ?? "")" }
        return metadata.name ?? ""
    }

    /// Sets `apiVersion` and `kind` to this type's (for objects built in code or read from lists).
    public mutating func setTypeMeta() {
        apiVersion = Self.apiVersion
        kind = Self.kind
    }
}

/// Just the `apiVersion` and `kind` of a document, to decide what to decode it as.
public struct TypeMeta: Codable, Sendable, Hashable {
    public var apiVersion: String?
    public var kind: String?
    public var unknownFields = UnknownFields()

    public init(apiVersion: String? = nil, kind: String? = nil) {
        self.apiVersion = apiVersion
        self.kind = kind
    }
}
