/// Metadata every persisted object carries (`metav1.ObjectMeta`).
public struct ObjectMeta: Codable, Sendable, Hashable {
    public var name: String?
    public var generateName: String?
    public var namespace: String?
    public var selfLink: String?
    public var uid: String?
    public var resourceVersion: String?
    public var generation: Int64?
    public var creationTimestamp: Timestamp?
    public var deletionTimestamp: Timestamp?
    public var deletionGracePeriodSeconds: Int64?
    public var labels: [String: String]?
    public var annotations: [String: String]?
    public var ownerReferences: [OwnerReference]?
    public var finalizers: [String]?
    /// Server-side-apply bookkeeping; kept opaque and written back untouched.
    public var managedFields: [JSONValue]?
    public var unknownFields = UnknownFields()

    public init(name: String? = nil, namespace: String? = nil, labels: [String: String]? = nil, annotations: [String: String]? = nil) {
        self.name = name
        self.namespace = namespace
        self.labels = labels
        self.annotations = annotations
    }
}

/// A pointer from an object to the object that owns it.
public struct OwnerReference: Codable, Sendable, Hashable {
    public var apiVersion: String = ""
    public var kind: String = ""
    public var name: String = ""
    public var uid: String = ""
    public var controller: Bool?
    public var blockOwnerDeletion: Bool?
    public var unknownFields = UnknownFields()

    public init(apiVersion: String, kind: String, name: String, uid: String, controller: Bool? = nil) {
        self.apiVersion = apiVersion
        self.kind = kind
        self.name = name
        self.uid = uid
        self.controller = controller
    }
}

/// A reference to an object by kind, namespace and name (`v1.ObjectReference`).
public struct ObjectReference: Codable, Sendable, Hashable {
    public var kind: String?
    public var namespace: String?
    public var name: String?
    public var uid: String?
    public var apiVersion: String?
    public var resourceVersion: String?
    public var fieldPath: String?
    public var unknownFields = UnknownFields()

    public init(kind: String? = nil, namespace: String? = nil, name: String? = nil, uid: String? = nil, apiVersion: String? = nil) {
        self.kind = kind
        self.namespace = namespace
        self.name = name
        self.uid = uid
        self.apiVersion = apiVersion
    }
}

/// A reference to an object in the same namespace by name (`v1.LocalObjectReference`).
public struct LocalObjectReference: Codable, Sendable, Hashable {
    public var name: String?
    public var unknownFields = UnknownFields()

    public init(name: String? = nil) { self.name = name }
}
