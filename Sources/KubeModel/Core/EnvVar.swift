/// An environment variable: a literal value or one taken from elsewhere.
public struct EnvVar: Codable, Sendable, Hashable {
    public var name: String = ""
    /// A literal; `$(VAR)` references are expanded by the kubelet.
    public var value: String?
    public var valueFrom: EnvVarSource?
    public var unknownFields = UnknownFields()

    public init(name: String, value: String? = nil, valueFrom: EnvVarSource? = nil) {
        self.name = name
        self.value = value
        self.valueFrom = valueFrom
    }
}

/// Where an environment variable's value comes from.
public struct EnvVarSource: Codable, Sendable, Hashable {
    public var fieldRef: ObjectFieldSelector?
    public var resourceFieldRef: ResourceFieldSelector?
    public var configMapKeyRef: KeySelector?
    public var secretKeyRef: KeySelector?
    public var unknownFields = UnknownFields()

    public init() {}
}

/// A field of the pod, such as `metadata.name` or `status.podIP`.
public struct ObjectFieldSelector: Codable, Sendable, Hashable {
    public var apiVersion: String?
    public var fieldPath: String = ""
    public var unknownFields = UnknownFields()

    public init(fieldPath: String) { self.fieldPath = fieldPath }
}

/// A container's resource request or limit, such as `limits.memory`, scaled by a divisor.
public struct ResourceFieldSelector: Codable, Sendable, Hashable {
    public var containerName: String?
    public var resource: String = ""
    public var divisor: Quantity?
    public var unknownFields = UnknownFields()

    public init(resource: String, containerName: String? = nil, divisor: Quantity? = nil) {
        self.resource = resource
        self.containerName = containerName
        self.divisor = divisor
    }
}

/// A key of a ConfigMap or Secret (`configMapKeyRef`, `secretKeyRef`).
public struct KeySelector: Codable, Sendable, Hashable {
    public var name: String?
    public var key: String = ""
    public var optional: Bool?
    public var unknownFields = UnknownFields()

    public init(name: String, key: String, optional: Bool? = nil) {
        self.name = name
        self.key = key
        self.optional = optional
    }
}

/// All keys of a ConfigMap or Secret as environment variables.
public struct EnvFromSource: Codable, Sendable, Hashable {
    public var prefix: String?
    public var configMapRef: EnvSourceReference?
    public var secretRef: EnvSourceReference?
    public var unknownFields = UnknownFields()

    public init(prefix: String? = nil, configMapRef: EnvSourceReference? = nil, secretRef: EnvSourceReference? = nil) {
        self.prefix = prefix
        self.configMapRef = configMapRef
        self.secretRef = secretRef
    }
}

/// The ConfigMap or Secret an ``EnvFromSource`` reads.
public struct EnvSourceReference: Codable, Sendable, Hashable {
    public var name: String?
    public var optional: Bool?
    public var unknownFields = UnknownFields()

    public init(name: String, optional: Bool? = nil) {
        self.name = name
        self.optional = optional
    }
}
