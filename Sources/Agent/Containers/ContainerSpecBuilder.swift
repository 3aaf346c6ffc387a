import KubeModel
import OCI
import PodNetwork
import Runtime
import SystemSupport

/// Turns one container of a pod into the OCI runtime configuration the runtime launches: the
/// process from ``ContainerProcess``, the user from the security contexts and the image, the
/// pod's sandbox namespaces, capabilities, seccomp, sysctls, resources and QoS OOM score.
public enum ContainerSpecBuilder {
    public struct Input: Sendable {
        public var pod: Pod
        public var container: Container
        public var process: ContainerProcess
        /// The image's `User` ("", "uid", "uid:gid", "name", "name:group").
        public var imageUser: String?
        /// The container's root file system (a mounted overlay or a flattened tree).
        public var rootfs: String
        /// Namespaces held for the pod; nil for hostNetwork pods (the host's namespaces).
        public var sandbox: PodSandbox?
        public var cgroupsPath: String
        /// Volume and file mounts (hosts, resolv.conf, termination log) after the defaults.
        public var mounts: [RuntimeSpec.Mount]
        /// Where `Localhost` seccomp profiles live.
        public var seccompProfileRoot: String
        /// The node's memory capacity (for the Burstable OOM score).
        public var nodeMemoryCapacity: Int64
        /// The host devices assigned to this container.
        public var devices: [DeviceManager.ContainerDevices] = []
        /// What device plugins gave this container (environment, device nodes, mounts).
        var pluginAllocations: [DevicePluginMessages.ContainerAllocation] = []
        /// An OOM kill takes the whole container, not one of its processes (the kubelet's
        /// `memory.oom.group` on cgroup v2; needs the v2 memory controller).
        public var groupOOMKill = false
        /// The kubelet's MemoryQoS (`memory.min`, `memory.high`): its throttling factor and the
        /// node's allocatable memory (the ceiling of a container without a limit); nil: off.
        public var memoryQoS: (factor: Double, allocatableMemory: Int64)?

        public init(
            pod: Pod, container: Container, process: ContainerProcess, imageUser: String?, rootfs: String, sandbox: PodSandbox?,
            cgroupsPath: String, mounts: [RuntimeSpec.Mount] = [], seccompProfileRoot: String, nodeMemoryCapacity: Int64
        ) {
            self.pod = pod
            self.container = container
            self.process = process
            self.imageUser = imageUser
            self.rootfs = rootfs
            self.sandbox = sandbox
            self.cgroupsPath = cgroupsPath
            self.mounts = mounts
            self.seccompProfileRoot = seccompProfileRoot
            self.nodeMemoryCapacity = nodeMemoryCapacity
        }
    }

    public static func build(_ input: Input) throws(PodSetupError) -> RuntimeSpec {
        let pod = input.pod, container = input.container
        let label = "container \(container.name)"
        let podContext = pod.spec?.securityContext
        let context = container.securityContext
        let privileged = context?.privileged == true
        var spec = DefaultSpec.make(args: input.process.args)
        // The UTS namespace is the sandbox's (which carries the pod's hostname) or the host's:
        // neither is the container's to rename.
        spec.hostname = nil
        var process = spec.process!
        process.env = input.process.env
        process.cwd = input.process.workingDirectory
        // `tty: true`: a terminal the container's monitor keeps (its output logged, attach reaches it).
        process.terminal = container.tty == true ? true : nil
        process.rlimits = nil   // the agent's limits, as with containerd
        process.user = try user(input, label: label)
        process.noNewPrivileges = !privileged && context?.allowPrivilegeEscalation == false
        process.oomScoreAdj = oomScoreAdjust(pod, container: container, nodeMemoryCapacity: input.nodeMemoryCapacity)
        process.capabilities = try capabilities(context?.capabilities, privileged: privileged, label: label)
        spec.process = process
        spec.root = RuntimeSpec.Root(path: input.rootfs, readonly: context?.readOnlyRootFilesystem == true)
        spec.mounts = (spec.mounts ?? []) + input.mounts
        spec.annotations = [
            "io.kubernetes.pod.name": pod.metadata.name ?? "", "io.kubernetes.pod.namespace": pod.metadata.namespace ?? "default",
            "io.kubernetes.pod.uid": pod.metadata.uid ?? "", "io.kubernetes.container.name": container.name,
        ]
        var linux = spec.linux!
        var namespaces = [RuntimeSpec.Namespace(type: "mount"), RuntimeSpec.Namespace(type: "cgroup")]
        if pod.spec?.hostPID != true { namespaces.append(RuntimeSpec.Namespace(type: "pid")) }
        if let sandbox = input.sandbox {
            namespaces.append(RuntimeSpec.Namespace(type: "network", path: sandbox.networkNamespace))
            namespaces.append(RuntimeSpec.Namespace(type: "uts", path: sandbox.utsNamespace))
            if pod.spec?.hostIPC != true { namespaces.append(RuntimeSpec.Namespace(type: "ipc", path: sandbox.ipcNamespace)) }
        } else {
            // hostNetwork: the host's network and UTS namespaces.
            if pod.spec?.hostIPC != true { namespaces.append(RuntimeSpec.Namespace(type: "ipc")) }
        }
        linux.namespaces = namespaces
        linux.cgroupsPath = input.cgroupsPath
        linux.resources = resources(container)
        var unified: [String: String] = [:]
        if input.groupOOMKill { unified["memory.oom.group"] = "1" }
        if let qos = input.memoryQoS {
            unified.merge(memoryQoS(container, factor: qos.factor, allocatableMemory: qos.allocatableMemory)) { $1 }
        }
        if !unified.isEmpty { linux.resources?.unified = unified }
        linux.seccomp = try seccomp(context?.seccompProfile ?? podContext?.seccompProfile, privileged: privileged, root: input.seccompProfileRoot, label: label)
        if let sysctls = podContext?.sysctls, !sysctls.isEmpty {
            linux.sysctl = Dictionary(sysctls.map { ($0.name, $0.value) }, uniquingKeysWith: { $1 })
        }
        if !input.devices.isEmpty {
            addDevices(input.devices, to: &spec, linux: &linux, group: podContext?.fsGroup)
        }
        if !input.pluginAllocations.isEmpty {
            try addPluginAllocations(input.pluginAllocations, to: &spec, linux: &linux, label: label)
        }
        if privileged {
            linux.maskedPaths = nil
            linux.readonlyPaths = nil
            linux.resources?.devices = [RuntimeSpec.Resources.DeviceRule(allow: true, type: "a", major: nil, minor: nil, access: "rwm")]
            spec.mounts = spec.mounts?.map { mount in
                guard mount.destination == "/sys" || mount.destination == "/sys/fs/cgroup" else { return mount }
                var writable = mount
                writable.options = mount.options?.filter { $0 != "ro" }
                return writable
            }
        }
        spec.linux = linux
        return spec
    }

    // MARK: devices

    /// The assigned device nodes at their container paths (owned by the pod's fsGroup when it
    /// has one), the device cgroup's allowance of exactly those besides the standard nodes, and
    /// `IOTKUBE_DEVICES_<CLASS>` listing them. Nothing else changes: no capability is added.
    static func addDevices(_ devices: [DeviceManager.ContainerDevices], to spec: inout RuntimeSpec, linux: inout RuntimeSpec.Linux, group: Int64?) {
        var rules = linux.resources?.devices ?? DeviceRules.standard
        var nodes = linux.devices ?? []
        var environment: [String] = []
        for assigned in devices {
            for node in assigned.nodes {
                let gid = group.flatMap { UInt32(exactly: $0) }
                nodes.append(RuntimeSpec.Device(type: node.type, path: node.containerPath, major: node.major, minor: node.minor,
                                                fileMode: gid == nil ? node.mode : node.mode | 0o060, uid: node.uid, gid: gid ?? node.gid))
                rules.append(RuntimeSpec.Resources.DeviceRule(allow: true, type: node.type, major: node.major, minor: node.minor, access: "rwm"))
            }
            // Space-separated (`for d in $IOTKUBE_DEVICES_I2C`): device names may hold commas (dma_heap/linux,cma).
            environment.append("\(assigned.deviceClass.environmentName)=" + assigned.nodes.map(\.containerPath).joined(separator: " "))
        }
        linux.devices = nodes
        if linux.resources == nil { linux.resources = RuntimeSpec.Resources() }
        linux.resources?.devices = rules
        let env = spec.process?.env ?? []
        spec.process?.env = env + environment
    }

    /// A device plugin's `Allocate` answer, as the kubelet passes it to the runtime: its
    /// environment, its device nodes (the host node's numbers at the container path, allowed by
    /// the device cgroup with the permissions it gave) and its bind mounts.
    static func addPluginAllocations(_ allocations: [DevicePluginMessages.ContainerAllocation], to spec: inout RuntimeSpec,
                                     linux: inout RuntimeSpec.Linux, label: String) throws(PodSetupError) {
        var rules = linux.resources?.devices ?? DeviceRules.standard
        var nodes = linux.devices ?? []
        var environment = spec.process?.env ?? []
        var mounts = spec.mounts ?? []
        for allocation in allocations {
            for (name, value) in allocation.envs.sorted(by: { $0.key < $1.key }) where !name.isEmpty && !name.contains("=") {
                environment.removeAll { $0.hasPrefix(name + "=") }
                environment.append("\(name)=\(value)")
            }
            for device in allocation.devices {
                guard let node = HostDevice.at(device.hostPath) else {
                    throw PodSetupError("\(label): the device plugin's device \(device.hostPath) is not a device node on this board")
                }
                let path = device.containerPath.isEmpty ? node.containerPath : device.containerPath
                guard path.hasPrefix("/dev/"), !path.split(separator: "/").contains("..") else {
                    throw PodSetupError("\(label): the device plugin's container path \(path) is not under /dev")
                }
                // "m" always: the runtime makes the node inside the container, whose cgroup
                // already applies (runc makes it before the rules apply; the effect is the same).
                let access = device.permissions.isEmpty ? "rwm" : String(device.permissions.filter { "rw".contains($0) }) + "m"
                nodes.append(RuntimeSpec.Device(type: node.type, path: path, major: node.major, minor: node.minor, fileMode: node.mode, uid: node.uid, gid: node.gid))
                rules.append(RuntimeSpec.Resources.DeviceRule(allow: true, type: node.type, major: node.major, minor: node.minor, access: access))
            }
            for mount in allocation.mounts {
                guard mount.hostPath.hasPrefix("/"), mount.containerPath.hasPrefix("/") else {
                    throw PodSetupError("\(label): the device plugin's mount \(mount.hostPath) → \(mount.containerPath) is not between absolute paths")
                }
                mounts.append(RuntimeSpec.Mount(destination: mount.containerPath, type: "bind", source: mount.hostPath,
                                                options: ["rbind", mount.readOnly ? "ro" : "rw", "nosuid"]))  // device directories (/dev/dri) need their nodes
            }
            // The agent's own annotations (pod identity, restart count) stay its own, and none that
            // an OCI runtime acts on (crun's `run.oci.*`) comes from a plugin.
            for (key, value) in allocation.annotations where !key.hasPrefix("io.kubernetes.") && !key.contains("iotkube")
                && !key.hasPrefix("run.oci.") && !key.hasPrefix("org.opencontainers.") && !key.hasPrefix("io.containers.") {
                spec.annotations?[key] = value
            }
        }
        linux.devices = nodes
        if linux.resources == nil { linux.resources = RuntimeSpec.Resources() }
        linux.resources?.devices = rules
        spec.process?.env = environment
        spec.mounts = mounts
    }

    // MARK: user

    /// runAsUser/runAsGroup (container over pod) or the image's user, resolved in the image's
    /// /etc/passwd and /etc/group (read inside the rootfs, see ``ImageRootFile``); runAsNonRoot is
    /// enforced here, as the kubelet does.
    static func user(_ input: Input, label: String) throws(PodSetupError) -> RuntimeSpec.User {
        let context = input.container.securityContext, podContext = input.pod.spec?.securityContext
        let passwd: String, groupFile: String
        do {
            passwd = try ImageRootFile.readText("/etc/passwd", rootfs: input.rootfs) ?? ""
            groupFile = try ImageRootFile.readText("/etc/group", rootfs: input.rootfs) ?? ""
        } catch { throw PodSetupError("\(label): \(error)") }
        let users = passwd.split(separator: "\n").map { $0.split(separator: ":", omittingEmptySubsequences: false).map(String.init) }.filter { $0.count >= 4 }
        let groups = groupFile.split(separator: "\n").map { $0.split(separator: ":", omittingEmptySubsequences: false).map(String.init) }.filter { $0.count >= 3 }
        var uid: UInt32 = 0
        var gid: UInt32?
        var userName: String?
        let imageUser = input.imageUser ?? ""
        let imageParts = imageUser.split(separator: ":", maxSplits: 1).map(String.init)
        if let runAsUser = context?.runAsUser ?? podContext?.runAsUser {
            guard let value = UInt32(exactly: runAsUser) else { throw PodSetupError("\(label): runAsUser \(runAsUser) is out of range") }
            uid = value
        } else if let name = imageParts.first, !name.isEmpty {
            if let value = UInt32(name) {
                uid = value
            } else {
                if context?.runAsNonRoot ?? podContext?.runAsNonRoot == true {
                    throw PodSetupError("\(label): container has runAsNonRoot and image has non-numeric user (\(name)), cannot verify user is non-root")
                }
                guard let entry = users.first(where: { $0[0] == name }), let value = UInt32(entry[2]) else {
                    throw PodSetupError("\(label): the image's user \"\(name)\" is not in its /etc/passwd")
                }
                uid = value
                userName = name
            }
            if imageParts.count == 2 {
                if let value = UInt32(imageParts[1]) { gid = value } else {
                    guard let entry = groups.first(where: { $0[0] == imageParts[1] }), let value = UInt32(entry[2]) else {
                        throw PodSetupError("\(label): the image's group \"\(imageParts[1])\" is not in its /etc/group")
                    }
                    gid = value
                }
            }
        }
        if context?.runAsNonRoot ?? podContext?.runAsNonRoot == true, uid == 0 {
            throw PodSetupError("\(label): container has runAsNonRoot and image will run as root")
        }
        let entry = users.first { UInt32($0[2]) == uid }
        userName = userName ?? entry?[0]
        if let runAsGroup = context?.runAsGroup ?? podContext?.runAsGroup {
            guard let value = UInt32(exactly: runAsGroup) else { throw PodSetupError("\(label): runAsGroup \(runAsGroup) is out of range") }
            gid = value
        }
        var user = RuntimeSpec.User(uid: uid, gid: gid ?? entry.flatMap { UInt32($0[3]) } ?? 0)
        var additional: [UInt32] = []
        if let userName {
            for group in groups where group[3...].joined(separator: ":").split(separator: ",").contains(Substring(userName)) {
                if let value = UInt32(group[2]) { additional.append(value) }
            }
        }
        for value in (podContext?.supplementalGroups ?? []) + (podContext?.fsGroup.map { [$0] } ?? []) {
            guard let group = UInt32(exactly: value) else { throw PodSetupError("\(label): group \(value) is out of range") }
            additional.append(group)
        }
        var seen = Set<UInt32>()
        additional = additional.filter { $0 != user.gid && seen.insert($0).inserted }
        if !additional.isEmpty { user.additionalGids = additional }
        return user
    }

    // MARK: capabilities, seccomp

    static func capabilities(_ change: KubeModel.Capabilities?, privileged: Bool, label: String) throws(PodSetupError) -> RuntimeSpec.Capabilities {
        let all = Runtime.Capabilities.numbers.keys.sorted()
        func normalized(_ name: String) throws(PodSetupError) -> [String] {
            let upper = name.uppercased()
            if upper == "ALL" { return all }
            let full = upper.hasPrefix("CAP_") ? upper : "CAP_" + upper
            guard Runtime.Capabilities.numbers[full] != nil else { throw PodSetupError("\(label): unknown capability \"\(name)\"") }
            return [full]
        }
        var set: [String]
        if privileged {
            set = all
        } else {
            set = Runtime.Capabilities.defaultSet
            for name in change?.drop ?? [] { let names = try normalized(name); set.removeAll { names.contains($0) } }
            for name in change?.add ?? [] { for full in try normalized(name) where !set.contains(full) { set.append(full) } }
        }
        var capabilities = RuntimeSpec.Capabilities()
        capabilities.bounding = set
        capabilities.effective = set
        capabilities.permitted = set
        return capabilities
    }

    /// RuntimeDefault when nothing is said (the kubelet's `seccompDefault: true`), none for
    /// Unconfined and privileged containers, a JSON profile file for Localhost.
    static func seccomp(_ profile: SeccompProfile?, privileged: Bool, root: String, label: String) throws(PodSetupError) -> RuntimeSpec.Seccomp? {
        if privileged { return nil }
        switch profile?.type ?? .runtimeDefault {
        case .runtimeDefault: return RuntimeDefaultSeccomp.profile()
        case .unconfined: return nil
        case .localhost:
            guard let relative = profile?.localhostProfile, !relative.isEmpty, !relative.hasPrefix("/"),
                  !relative.split(separator: "/").contains("..") else {
                throw PodSetupError("\(label): seccompProfile Localhost needs a localhostProfile path inside \(root)")
            }
            let path = root + "/" + relative
            guard let text = FileTree.readText(path) else { throw PodSetupError("\(label): seccomp profile \(path) cannot be read") }
            do { return try KubeJSON.decode(RuntimeSpec.Seccomp.self, from: Array(text.utf8), validation: .discard) } catch {
                throw PodSetupError("\(label): seccomp profile \(path): \(error)")
            }
        }
    }

    // MARK: resources

    /// The kubelet's conversions: CPU request → shares (2 to 262144), CPU limit → quota over a
    /// 100 ms period (min 1 ms, at most the kernel's 2⁴⁴−1 µs), memory limit → limit with no
    /// swap. Products saturate: `limits.cpu: 100G` is a valid quantity, not a reason to trap.
    static let maximumShares: Int64 = 262_144
    static let maximumQuota: Int64 = (1 << 44) - 1

    static func resources(_ container: Container) -> RuntimeSpec.Resources {
        var resources = RuntimeSpec.Resources()
        let requests = container.resources?.requests ?? [:], limits = container.resources?.limits ?? [:]
        var cpu = RuntimeSpec.Resources.CPU()
        let requestMilli = (requests["cpu"] ?? limits["cpu"])?.milliValue ?? 0
        cpu.shares = UInt64(min(Self.maximumShares, max(2, requestMilli.multipliedSaturated(by: 1024) / 1000)))
        if let limit = limits["cpu"], !limit.isZero {
            cpu.period = 100_000
            cpu.quota = min(Self.maximumQuota, max(1000, limit.milliValue.multipliedSaturated(by: 100_000) / 1000))
        }
        resources.cpu = cpu
        if let memory = limits["memory"], !memory.isZero {
            resources.memory = RuntimeSpec.Resources.Memory(limit: memory.byteCount)
            resources.memory?.swap = memory.byteCount
        }
        return resources
    }

    /// The QoS class's OOM score: Guaranteed −997, BestEffort 1000, Burstable by the
    /// container's memory request (the kubelet's policy).
    static func oomScoreAdjust(_ pod: Pod, container: Container, nodeMemoryCapacity: Int64) -> Int {
        switch PodStatusBuilder.qosClass(pod) {
        case .bestEffort: return 1000
        case .guaranteed: return -997
        case .burstable: break
        }
        let request = container.resources?.requests?["memory"]?.byteCount ?? 0
        guard nodeMemoryCapacity > 0 else { return 999 }
        let share = min(1000, max(0, request.multipliedSaturated(by: 1000) / nodeMemoryCapacity))
        return min(999, max(2, 1000 - Int(share)))
    }
}
