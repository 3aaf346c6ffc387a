import OCI
import SystemSupport

/// What the C side executes: the spec resolved into plain records (flags, numbers, absolute
/// paths), written as NUL-separated tokens so the single-threaded setup code parses no JSON.
struct LaunchPlan {
    private(set) var bytes: [UInt8] = []

    mutating func record(_ tag: String, _ values: [String]) {
        for token in [tag] + values {
            bytes.append(contentsOf: token.utf8)
            bytes.append(0)
        }
    }

    static let namespaceFlags: [String: Int] = [
        "mount": 0x0002_0000, "cgroup": 0x0200_0000, "uts": 0x0400_0000, "ipc": 0x0800_0000,
        "pid": 0x2000_0000, "network": 0x4000_0000,
    ]

    static let rlimits: [String: Int] = [
        "RLIMIT_CPU": 0, "RLIMIT_FSIZE": 1, "RLIMIT_DATA": 2, "RLIMIT_STACK": 3, "RLIMIT_CORE": 4, "RLIMIT_RSS": 5,
        "RLIMIT_NPROC": 6, "RLIMIT_NOFILE": 7, "RLIMIT_MEMLOCK": 8, "RLIMIT_AS": 9, "RLIMIT_LOCKS": 10,
        "RLIMIT_SIGPENDING": 11, "RLIMIT_MSGQUEUE": 12, "RLIMIT_NICE": 13, "RLIMIT_RTPRIO": 14, "RLIMIT_RTTIME": 15,
    ]

    /// The devices every container gets when it has its own /dev (OCI "default devices").
    static let defaultDevices: [(String, UInt32, UInt32)] = [
        ("/dev/null", 1, 3), ("/dev/zero", 1, 5), ("/dev/full", 1, 7), ("/dev/random", 1, 8), ("/dev/urandom", 1, 9), ("/dev/tty", 5, 0),
    ]

    static let defaultSymlinks = [
        ("/proc/self/fd", "/dev/fd"), ("/proc/self/fd/0", "/dev/stdin"), ("/proc/self/fd/1", "/dev/stdout"),
        ("/proc/self/fd/2", "/dev/stderr"), ("pts/ptmx", "/dev/ptmx"), ("/proc/kcore", "/dev/core"),
    ]

    /// sysctls a container may set: those isolated by its IPC or network namespace.
    static func isNamespaced(_ key: String, ownNetwork: Bool) -> Bool {
        let ipc = ["kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced"]
        return ipc.contains(key) || key.hasPrefix("fs.mqueue.") || (ownNetwork && key.hasPrefix("net."))
    }

    /// The process part, shared by create and exec.
    /// `allowTerminal`: the caller hands the terminal to a console socket (create, attached exec).
    mutating func addProcess(_ process: RuntimeSpec.Process, seccompPath: String?, allowTerminal: Bool = false) throws(RuntimeError) {
        guard let args = process.args, !args.isEmpty, !args[0].isEmpty else { throw RuntimeError("process.args: the process needs a command") }
        guard process.terminal != true || allowTerminal else { throw RuntimeError("process.terminal: this exec has no console to hand a terminal to; use pipes") }
        guard process.cwd.hasPrefix("/") else { throw RuntimeError("process.cwd: \"\(process.cwd)\" is not an absolute path") }
        for arg in args { record("arg", [arg]) }
        for variable in process.env ?? [] {
            guard variable.contains("=") else { throw RuntimeError("process.env: \"\(variable)\" is not NAME=value") }
            record("env", [variable])
        }
        record("cwd", [process.cwd])
        let groups = process.user.additionalGids ?? []
        guard groups.count <= 64 else { throw RuntimeError("process.user.additionalGids: more than 64 groups") }
        record("user", [String(process.user.uid), String(process.user.gid), process.user.umask == nil ? "0" : "1",
                        String(process.user.umask ?? 0), String(groups.count)] + groups.map(String.init))
        let capabilities = process.capabilities ?? RuntimeSpec.Capabilities()
        let masks = [
            try Capabilities.mask(capabilities.bounding, field: "process.capabilities.bounding"),
            try Capabilities.mask(capabilities.effective, field: "process.capabilities.effective"),
            try Capabilities.mask(capabilities.inheritable, field: "process.capabilities.inheritable"),
            try Capabilities.mask(capabilities.permitted, field: "process.capabilities.permitted"),
            try Capabilities.mask(capabilities.ambient, field: "process.capabilities.ambient"),
        ]
        record("caps", masks.map { String($0) })
        for (index, limit) in (process.rlimits ?? []).enumerated() {
            guard let number = Self.rlimits[limit.type] else { throw RuntimeError("process.rlimits[\(index)].type: unknown \"\(limit.type)\"") }
            guard limit.soft <= limit.hard else { throw RuntimeError("process.rlimits[\(index)]: soft \(limit.soft) is above hard \(limit.hard)") }
            record("rlimit", [String(number), String(limit.soft), String(limit.hard)])
        }
        record("nnp", [process.noNewPrivileges == true ? "1" : "0"])
        if let adjustment = process.oomScoreAdj {
            guard (-1000...1000).contains(adjustment) else { throw RuntimeError("process.oomScoreAdj: \(adjustment) is not -1000..1000") }
            record("oomscoreadj", [String(adjustment)])
        }
        if let seccompPath { record("seccomp", [seccompPath]) }
    }

    /// Links and read-only paths a v1 cgroup mount adds (made after the mounts).
    private var cgroupLinks: [(String, String)] = []
    private var cgroupReadonly: [String] = []

    /// A `cgroup` mount as this host has cgroups: cgroup2, or a tmpfs of v1 hierarchies (each
    /// mounted afresh, so that inside the container's cgroup namespace it shows the container's
    /// own cgroup as its root, and read-only when the mount says so).
    private mutating func addCgroupMount(at destination: String, options: MountOptions, layout: CgroupMountLayout) {
        let base = destination.hasSuffix("/") ? String(destination.dropLast()) : destination
        switch layout {
        case .unified:
            record("mount", ["cgroup", destination, "cgroup2", String(options.flags), String(options.propagation), "", "0"])
        case .hierarchies(let hierarchies):
            let writable = options.flags & ~MountOptions.rdonly
            record("mount", ["tmpfs", destination, "tmpfs", String(writable), "0", "mode=755,size=64k", "0"])
            for hierarchy in hierarchies where !hierarchy.controllers.isEmpty {
                record("mount", ["cgroup", "\(base)/\(hierarchy.directory)", "cgroup", String(options.flags), "0",
                                 hierarchy.controllers.joined(separator: ","), "0"])
                for controller in hierarchy.controllers where controller != hierarchy.directory && hierarchy.controllers.count > 1 {
                    cgroupLinks.append((hierarchy.directory, "\(base)/\(controller)"))
                }
            }
            if options.flags & MountOptions.rdonly != 0 { cgroupReadonly.append(base) }
        }
    }

    /// The whole container: rootfs, namespaces, mounts, devices, paths, identity, process.
    mutating func addContainer(_ spec: RuntimeSpec, bundle: String, seccompPath: String?, cgroupLayout: CgroupMountLayout) throws(RuntimeError) {
        guard let root = spec.root, !root.path.isEmpty else { throw RuntimeError("root.path: missing") }
        let rootfs = root.path.hasPrefix("/") ? root.path : "\(bundle)/\(root.path)"
        guard FileTree.isDirectory(rootfs) else { throw RuntimeError("root.path: \(rootfs) is not a directory (a missing rootfs?)") }
        let linux = spec.linux ?? RuntimeSpec.Linux()
        record("rootfs", [rootfs, root.readonly == true ? "1" : "0", String(try MountOptions.propagation(linux.rootfsPropagation))])
        var seen: Set<String> = []
        var ownMount = false, ownNetwork = false, ownUTS = false, ownCgroup = false
        for (index, namespace) in (linux.namespaces ?? []).enumerated() {
            guard !seen.contains(namespace.type) else { throw RuntimeError("linux.namespaces[\(index)]: \(namespace.type) listed twice") }
            seen.insert(namespace.type)
            guard let flag = Self.namespaceFlags[namespace.type] else {
                if namespace.type == "user" { throw RuntimeError("linux.namespaces[\(index)]: user namespaces are not supported yet") }
                throw RuntimeError("linux.namespaces[\(index)]: unknown namespace type \"\(namespace.type)\"")
            }
            let path = namespace.path ?? ""
            if !path.isEmpty && !FileTree.exists(path) { throw RuntimeError("linux.namespaces[\(index)].path: \(path) does not exist") }
            if path.isEmpty {
                if namespace.type == "mount" { ownMount = true }
                if namespace.type == "network" { ownNetwork = true }
                if namespace.type == "uts" { ownUTS = true }
                if namespace.type == "cgroup" { ownCgroup = true }
            }
            record("ns", [String(flag), path])
        }
        guard ownMount else { throw RuntimeError("linux.namespaces: a container needs its own mount namespace") }
        if spec.hostname != nil && !ownUTS { throw RuntimeError("hostname: setting it needs a new uts namespace") }
        var mountsDev = false
        for (index, mount) in (spec.mounts ?? []).enumerated() {
            guard mount.destination.hasPrefix("/") else { throw RuntimeError("mounts[\(index)].destination: \"\(mount.destination)\" is not absolute") }
            let options = MountOptions(mount.options ?? [], type: mount.type)
            let isBind = options.flags & MountOptions.bind != 0
            var source = mount.source ?? ""
            if isBind && !source.hasPrefix("/") { source = "\(bundle)/\(source)" }
            if isBind && !FileTree.exists(source) { throw RuntimeError("mounts[\(index)].source: \(source) does not exist") }
            if !isBind && (mount.type ?? "").isEmpty { throw RuntimeError("mounts[\(index)].type: missing (and not a bind mount)") }
            if mount.destination == "/dev" { mountsDev = true }
            if mount.type == "cgroup" || mount.type == "cgroup2" {
                // Mounted from the host's cgroup namespace it would show the host's hierarchy
                // (and a fresh cgroup2 mount would reset the host's mount options).
                guard ownCgroup else { throw RuntimeError("mounts[\(index)]: a cgroup mount needs a cgroup namespace of the container's own (linux.namespaces: cgroup)") }
                addCgroupMount(at: mount.destination, options: options, layout: cgroupLayout)
                continue
            }
            record("mount", [source, mount.destination, isBind ? "" : (mount.type ?? ""), String(options.flags), String(options.propagation),
                             options.data.joined(separator: ","), options.recursiveReadonly ? "1" : "0"])
        }
        for (target, path) in cgroupLinks { record("symlink", [target, path]) }
        if mountsDev {
            for (path, major, minor) in Self.defaultDevices { record("device", [path, "c", String(major), String(minor), "438", "0", "0"]) }
            for (target, path) in Self.defaultSymlinks { record("symlink", [target, path]) }
        }
        for (index, device) in (linux.devices ?? []).enumerated() {
            guard device.path.hasPrefix("/dev/"), !device.path.contains("/../") else { throw RuntimeError("linux.devices[\(index)].path: \(device.path) is not under /dev") }
            guard ["c", "u", "b", "p"].contains(device.type) else { throw RuntimeError("linux.devices[\(index)].type: \"\(device.type)\"") }
            record("device", [device.path, device.type == "u" ? "c" : device.type, String(device.major ?? 0), String(device.minor ?? 0),
                              String(device.fileMode ?? 0o666), String(device.uid ?? 0), String(device.gid ?? 0)])
        }
        for path in linux.maskedPaths ?? [] { record("masked", [path]) }
        for path in (linux.readonlyPaths ?? []) + cgroupReadonly { record("readonly", [path]) }
        for (key, value) in (linux.sysctl ?? [:]).sorted(by: { $0.key < $1.key }) {
            guard Self.isNamespaced(key, ownNetwork: ownNetwork) else {
                throw RuntimeError("linux.sysctl: \(key) is not namespaced\(key.hasPrefix("net.") ? " (the container shares the host network)" : ""); it would change the host")
            }
            record("sysctl", [key, value])
        }
        if let hostname = spec.hostname { record("hostname", [hostname]) }
        if let domainname = spec.domainname { record("domainname", [domainname]) }
        guard let process = spec.process else { throw RuntimeError("process: missing") }
        try addProcess(process, seccompPath: seccompPath, allowTerminal: true)
    }
}
