/// An OCI runtime-spec bundle configuration (`config.json`), the fields a Linux runtime acts on.
/// Unknown fields are ignored, as the spec allows for extensions.
public struct RuntimeSpec: Codable, Sendable, Hashable {
    public var ociVersion: String
    public var process: Process?
    public var root: Root?
    public var hostname: String?
    public var domainname: String?
    public var mounts: [Mount]?
    public var hooks: Hooks?
    public var annotations: [String: String]?
    public var linux: Linux?

    public init(ociVersion: String = "1.2.0") { self.ociVersion = ociVersion }

    public struct Process: Codable, Sendable, Hashable {
        public var terminal: Bool?
        public var user: User
        public var args: [String]?
        public var env: [String]?
        public var cwd: String
        public var capabilities: Capabilities?
        public var rlimits: [Rlimit]?
        public var noNewPrivileges: Bool?
        public var oomScoreAdj: Int?
        public var apparmorProfile: String?
        public var selinuxLabel: String?

        public init(args: [String], cwd: String = "/", user: User = User()) {
            self.args = args
            self.cwd = cwd
            self.user = user
        }
    }

    public struct User: Codable, Sendable, Hashable {
        public var uid: UInt32 = 0
        public var gid: UInt32 = 0
        public var umask: UInt32?
        public var additionalGids: [UInt32]?
        public init(uid: UInt32 = 0, gid: UInt32 = 0) {
            self.uid = uid
            self.gid = gid
        }
    }

    public struct Capabilities: Codable, Sendable, Hashable {
        public var bounding: [String]?
        public var effective: [String]?
        public var inheritable: [String]?
        public var permitted: [String]?
        public var ambient: [String]?
        public init() {}
    }

    public struct Rlimit: Codable, Sendable, Hashable {
        public var type: String
        public var hard: UInt64
        public var soft: UInt64
        public init(type: String, hard: UInt64, soft: UInt64) {
            self.type = type
            self.hard = hard
            self.soft = soft
        }
    }

    public struct Root: Codable, Sendable, Hashable {
        public var path: String
        public var readonly: Bool?
        public init(path: String, readonly: Bool? = nil) {
            self.path = path
            self.readonly = readonly
        }
    }

    public struct Mount: Codable, Sendable, Hashable {
        public var destination: String
        public var type: String?
        public var source: String?
        public var options: [String]?
        public init(destination: String, type: String?, source: String?, options: [String]? = nil) {
            self.destination = destination
            self.type = type
            self.source = source
            self.options = options
        }
    }

    /// Programs the runtime runs at points of the container's life (the runtime CLI's bundles;
    /// the agent's own specs have none).
    public struct Hooks: Codable, Sendable, Hashable {
        public var prestart: [Hook]?
        public var createRuntime: [Hook]?
        public var createContainer: [Hook]?
        public var startContainer: [Hook]?
        public var poststart: [Hook]?
        public var poststop: [Hook]?
        public var isEmpty: Bool {
            [prestart, createRuntime, createContainer, startContainer, poststart, poststop].allSatisfy { $0?.isEmpty ?? true }
        }

        public init() {}
    }

    public struct Hook: Codable, Sendable, Hashable {
        public var path: String
        public var args: [String]?
        public var env: [String]?
        public var timeout: Int?

        public init(path: String, args: [String]? = nil, env: [String]? = nil, timeout: Int? = nil) {
            self.path = path
            self.args = args
            self.env = env
            self.timeout = timeout
        }
    }

    public struct Linux: Codable, Sendable, Hashable {
        public var namespaces: [Namespace]?
        public var uidMappings: [IDMapping]?
        public var gidMappings: [IDMapping]?
        public var devices: [Device]?
        public var cgroupsPath: String?
        public var resources: Resources?
        public var rootfsPropagation: String?
        public var seccomp: Seccomp?
        public var sysctl: [String: String]?
        public var maskedPaths: [String]?
        public var readonlyPaths: [String]?
        public var mountLabel: String?
        public init() {}
    }

    public struct Namespace: Codable, Sendable, Hashable {
        public var type: String
        public var path: String?
        public init(type: String, path: String? = nil) {
            self.type = type
            self.path = path
        }
    }

    public struct IDMapping: Codable, Sendable, Hashable {
        public var containerID: UInt32
        public var hostID: UInt32
        public var size: UInt32
    }

    public struct Device: Codable, Sendable, Hashable {
        public var type: String
        public var path: String
        public var major: Int64?
        public var minor: Int64?
        public var fileMode: UInt32?
        public var uid: UInt32?
        public var gid: UInt32?
        public init(type: String, path: String, major: Int64? = nil, minor: Int64? = nil, fileMode: UInt32? = nil, uid: UInt32? = nil, gid: UInt32? = nil) {
            self.type = type
            self.path = path
            self.major = major
            self.minor = minor
            self.fileMode = fileMode
            self.uid = uid
            self.gid = gid
        }
    }

    public struct Resources: Codable, Sendable, Hashable {
        public var memory: Memory?
        public var cpu: CPU?
        public var pids: Pids?
        public var blockIO: BlockIO?
        public var unified: [String: String]?
        public var devices: [DeviceRule]?
        public init() {}

        public struct Memory: Codable, Sendable, Hashable {
            public var limit: Int64?
            public var reservation: Int64?
            public var swap: Int64?
            public init(limit: Int64? = nil) { self.limit = limit }
        }

        public struct CPU: Codable, Sendable, Hashable {
            public var shares: UInt64?
            public var quota: Int64?
            public var period: UInt64?
            public var cpus: String?
            public var mems: String?
            public init() {}
        }

        public struct Pids: Codable, Sendable, Hashable {
            public var limit: Int64
            public init(limit: Int64) { self.limit = limit }
        }

        public struct BlockIO: Codable, Sendable, Hashable {
            public var weight: UInt16?
        }

        public struct DeviceRule: Codable, Sendable, Hashable {
            public var allow: Bool
            public var type: String?
            public var major: Int64?
            public var minor: Int64?
            public var access: String?
            public init(allow: Bool, type: String?, major: Int64?, minor: Int64?, access: String?) {
                self.allow = allow
                self.type = type
                self.major = major
                self.minor = minor
                self.access = access
            }
        }
    }

    public struct Seccomp: Codable, Sendable, Hashable {
        public var defaultAction: String
        public var defaultErrnoRet: UInt32?
        public var architectures: [String]?
        public var flags: [String]?
        public var syscalls: [Syscall]?
        public init(defaultAction: String) { self.defaultAction = defaultAction }

        public struct Syscall: Codable, Sendable, Hashable {
            public var names: [String]
            public var action: String
            public var errnoRet: UInt32?
            public var args: [Argument]?
            public var comment: String?
            public init(names: [String], action: String) {
                self.names = names
                self.action = action
            }
        }

        public struct Argument: Codable, Sendable, Hashable {
            public var index: UInt32
            public var value: UInt64
            public var valueTwo: UInt64?
            public var op: String
            public init(index: UInt32, value: UInt64, valueTwo: UInt64?, op: String) {
                self.index = index
                self.value = value
                self.valueTwo = valueTwo
                self.op = op
            }
        }
    }
}
