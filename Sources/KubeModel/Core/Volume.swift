/// A named volume of a pod and its source. Sources this model does not know (nfs, csi, …)
/// are kept in ``unknownFields``; ``hasKnownSource`` tells the kubelet whether it can mount it.
public struct Volume: Codable, Sendable, Hashable {
    public var name: String = ""
    public var emptyDir: EmptyDirVolumeSource?
    public var hostPath: HostPathVolumeSource?
    public var configMap: ConfigMapVolumeSource?
    public var secret: SecretVolumeSource?
    public var downwardAPI: DownwardAPIVolumeSource?
    public var projected: ProjectedVolumeSource?
    public var persistentVolumeClaim: JSONValue?
    public var unknownFields = UnknownFields()

    public init(name: String) { self.name = name }

    /// Whether exactly one source this agent can mount is set.
    public var hasKnownSource: Bool {
        let sources: [Bool] = [emptyDir != nil, hostPath != nil, configMap != nil, secret != nil, downwardAPI != nil, projected != nil]
        return sources.filter { $0 }.count == 1 && persistentVolumeClaim == nil && unknownFields.isEmpty
    }
}

/// Scratch space that lives as long as the pod.
public struct EmptyDirVolumeSource: Codable, Sendable, Hashable {
    public var medium: StorageMedium?
    public var sizeLimit: Quantity?
    public var unknownFields = UnknownFields()

    public init(medium: StorageMedium? = nil, sizeLimit: Quantity? = nil) {
        self.medium = medium
        self.sizeLimit = sizeLimit
    }
}

/// A file or directory of the node.
public struct HostPathVolumeSource: Codable, Sendable, Hashable {
    public var path: String = ""
    public var type: HostPathType?
    public var unknownFields = UnknownFields()

    public init(path: String, type: HostPathType? = nil) {
        self.path = path
        self.type = type
    }
}

/// A file of a volume taken from one key of a ConfigMap or Secret.
public struct KeyToPath: Codable, Sendable, Hashable {
    public var key: String = ""
    public var path: String = ""
    public var mode: Int32?
    public var unknownFields = UnknownFields()

    public init(key: String, path: String, mode: Int32? = nil) {
        self.key = key
        self.path = path
        self.mode = mode
    }
}

/// The keys of a ConfigMap as files.
public struct ConfigMapVolumeSource: Codable, Sendable, Hashable {
    public var name: String?
    public var items: [KeyToPath]?
    public var defaultMode: Int32?
    public var optional: Bool?
    public var unknownFields = UnknownFields()

    public init(name: String) { self.name = name }
}

/// The keys of a Secret as files (on tmpfs).
public struct SecretVolumeSource: Codable, Sendable, Hashable {
    public var secretName: String?
    public var items: [KeyToPath]?
    public var defaultMode: Int32?
    public var optional: Bool?
    public var unknownFields = UnknownFields()

    public init(secretName: String) { self.secretName = secretName }
}

/// Pod fields and container resources as files.
public struct DownwardAPIVolumeSource: Codable, Sendable, Hashable {
    public var items: [DownwardAPIVolumeFile]?
    public var defaultMode: Int32?
    public var unknownFields = UnknownFields()

    public init(items: [DownwardAPIVolumeFile]) { self.items = items }
}

/// One file of a downward API volume.
public struct DownwardAPIVolumeFile: Codable, Sendable, Hashable {
    public var path: String = ""
    public var fieldRef: ObjectFieldSelector?
    public var resourceFieldRef: ResourceFieldSelector?
    public var mode: Int32?
    public var unknownFields = UnknownFields()

    public init(path: String, fieldRef: ObjectFieldSelector? = nil, resourceFieldRef: ResourceFieldSelector? = nil) {
        self.path = path
        self.fieldRef = fieldRef
        self.resourceFieldRef = resourceFieldRef
    }
}

/// Several sources projected into one directory.
public struct ProjectedVolumeSource: Codable, Sendable, Hashable {
    public var sources: [VolumeProjection]?
    public var defaultMode: Int32?
    public var unknownFields = UnknownFields()

    public init(sources: [VolumeProjection]) { self.sources = sources }
}

/// One source of a projected volume.
public struct VolumeProjection: Codable, Sendable, Hashable {
    public var secret: KeyProjection?
    public var configMap: KeyProjection?
    public var downwardAPI: DownwardAPIProjection?
    public var serviceAccountToken: ServiceAccountTokenProjection?
    public var clusterTrustBundle: JSONValue?
    public var unknownFields = UnknownFields()

    public init() {}
}

/// The keys of a ConfigMap or Secret inside a projected volume.
public struct KeyProjection: Codable, Sendable, Hashable {
    public var name: String?
    public var items: [KeyToPath]?
    public var optional: Bool?
    public var unknownFields = UnknownFields()

    public init(name: String, items: [KeyToPath]? = nil) {
        self.name = name
        self.items = items
    }
}

/// Downward API files inside a projected volume.
public struct DownwardAPIProjection: Codable, Sendable, Hashable {
    public var items: [DownwardAPIVolumeFile]?
    public var unknownFields = UnknownFields()

    public init(items: [DownwardAPIVolumeFile]) { self.items = items }
}

/// A service account token file inside a projected volume.
public struct ServiceAccountTokenProjection: Codable, Sendable, Hashable {
    public var audience: String?
    public var expirationSeconds: Int64?
    public var path: String = ""
    public var unknownFields = UnknownFields()

    public init(path: String, audience: String? = nil, expirationSeconds: Int64? = nil) {
        self.path = path
        self.audience = audience
        self.expirationSeconds = expirationSeconds
    }
}

/// Where a volume appears inside a container.
public struct VolumeMount: Codable, Sendable, Hashable {
    public var name: String = ""
    public var readOnly: Bool?
    /// `Disabled`, `IfPossible` or `Enabled`.
    public var recursiveReadOnly: String?
    public var mountPath: String = ""
    public var subPath: String?
    public var mountPropagation: MountPropagationMode?
    public var subPathExpr: String?
    public var unknownFields = UnknownFields()

    public init(name: String, mountPath: String, readOnly: Bool? = nil, subPath: String? = nil) {
        self.name = name
        self.mountPath = mountPath
        self.readOnly = readOnly
        self.subPath = subPath
    }
}
