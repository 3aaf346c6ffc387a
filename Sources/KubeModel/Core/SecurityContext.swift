/// Container-level security settings; they override the pod's.
public struct SecurityContext: Codable, Sendable, Hashable {
    public var capabilities: Capabilities?
    public var privileged: Bool?
    public var seLinuxOptions: SELinuxOptions?
    public var windowsOptions: JSONValue?
    public var runAsUser: Int64?
    public var runAsGroup: Int64?
    public var runAsNonRoot: Bool?
    public var readOnlyRootFilesystem: Bool?
    public var allowPrivilegeEscalation: Bool?
    /// `Default` or `Unmasked`.
    public var procMount: String?
    public var seccompProfile: SeccompProfile?
    public var appArmorProfile: SeccompProfile?
    public var unknownFields = UnknownFields()

    public init() {}
}

/// Pod-level security settings applied to every container.
public struct PodSecurityContext: Codable, Sendable, Hashable {
    public var seLinuxOptions: SELinuxOptions?
    public var windowsOptions: JSONValue?
    public var runAsUser: Int64?
    public var runAsGroup: Int64?
    public var runAsNonRoot: Bool?
    public var supplementalGroups: [Int64]?
    /// `Merge` or `Strict`.
    public var supplementalGroupsPolicy: String?
    public var fsGroup: Int64?
    public var sysctls: [Sysctl]?
    /// `OnRootMismatch` or `Always`.
    public var fsGroupChangePolicy: String?
    public var seccompProfile: SeccompProfile?
    public var appArmorProfile: SeccompProfile?
    public var seLinuxChangePolicy: String?
    public var unknownFields = UnknownFields()

    public init() {}
}

/// Linux capabilities to add to or drop from the default set.
public struct Capabilities: Codable, Sendable, Hashable {
    public var add: [String]?
    public var drop: [String]?
    public var unknownFields = UnknownFields()

    public init(add: [String]? = nil, drop: [String]? = nil) {
        self.add = add
        self.drop = drop
    }
}

/// A seccomp or AppArmor profile: the runtime default, none, or a file on the node.
public struct SeccompProfile: Codable, Sendable, Hashable {
    public var type: ProfileType = .runtimeDefault
    /// For `Localhost`: the profile's path relative to the node's profile directory.
    public var localhostProfile: String?
    public var unknownFields = UnknownFields()

    public init(type: ProfileType, localhostProfile: String? = nil) {
        self.type = type
        self.localhostProfile = localhostProfile
    }
}

/// SELinux labels (kept for API completeness; the agent does not apply SELinux).
public struct SELinuxOptions: Codable, Sendable, Hashable {
    public var user: String?
    public var role: String?
    public var type: String?
    public var level: String?
    public var unknownFields = UnknownFields()

    public init() {}
}

/// A namespaced kernel parameter set for the pod.
public struct Sysctl: Codable, Sendable, Hashable {
    public var name: String = ""
    public var value: String = ""
    public var unknownFields = UnknownFields()

    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }
}
