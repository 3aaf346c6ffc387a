/// A namespace.
public struct Namespace: KubeObject {
    public static let apiVersion = "v1"
    public static let kind = "Namespace"

    public var apiVersion: String? = Namespace.apiVersion
    public var kind: String? = Namespace.kind
    public var metadata = ObjectMeta()
    public var spec: NamespaceSpec?
    public var status: NamespaceStatus?
    public var unknownFields = UnknownFields()

    public init(name: String) { metadata = ObjectMeta(name: name) }
}

/// Finalizers that must run before a namespace is removed.
public struct NamespaceSpec: Codable, Sendable, Hashable {
    public var finalizers: [String]?
    public var unknownFields = UnknownFields()

    public init(finalizers: [String]? = nil) { self.finalizers = finalizers }
}

/// `Active` or `Terminating`.
public struct NamespaceStatus: Codable, Sendable, Hashable {
    public var phase: String?
    public var conditions: [JSONValue]?
    public var unknownFields = UnknownFields()

    public init(phase: String? = nil) { self.phase = phase }
}
