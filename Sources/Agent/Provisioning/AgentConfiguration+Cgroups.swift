import KubeModel
import OCI
import Runtime

extension AgentConfiguration {
    /// systemReserved and kubeReserved together (sums saturate).
    public var reserved: [String: Quantity] {
        (systemReserved ?? [:]).merging(kubeReserved ?? [:]) { $0 + $1 }
    }

    /// Whether `kubepods` is limited to node allocatable.
    public var enforcesPodAllocatable: Bool { cgroupsPerQOS != false && (enforceNodeAllocatable ?? ["pods"]).contains("pods") }

    /// The container runtime `runtime` names: the built-in one, or it with an OCI runtime behind it.
    public func containerRuntime() throws(ProvisioningError) -> BuiltinRuntime {
        let root = runtimeRoot ?? "/run/iotkube/runtime"
        guard let name = runtime, name != "builtin" else { return BuiltinRuntime(root: root) }
        do {
            // crun's own cgroup handling (not systemd's): the paths are the agent's pod cgroups.
            let arguments = name.split(separator: "/").last?.hasPrefix("crun") == true ? ["--cgroup-manager=cgroupfs"] : []
            return BuiltinRuntime(root: root, backend: try ExternalBackend(runtime: name, arguments: arguments, root: root + "/.external"))
        } catch {
            throw ProvisioningError("runtime: \(error)")
        }
    }

    func validateCgroups(_ path: String) throws(ProvisioningError) {
        switch cgroupDriver ?? "cgroupfs" {
        case "cgroupfs": break
        case "systemd":
            if let name = runtime, name != "builtin" {
                throw ProvisioningError("\(path): cgroupDriver: systemd needs the built-in runtime (it starts each container's scope); with runtime: \(name) use cgroupfs")
            }
            if let root = cgroupRoot, root != "/" {
                throw ProvisioningError("\(path): cgroupDriver: systemd puts pods in kubepods.slice; cgroupRoot (\(root)) needs cgroupfs")
            }
            if cgroupsPerQOS == false { throw ProvisioningError("\(path): cgroupDriver: systemd needs cgroupsPerQOS (its slices are the pods' cgroups)") }
        case let other:
            throw ProvisioningError("\(path): cgroupDriver: \"\(other)\" is not cgroupfs or systemd")
        }
        if cgroupsPerQOS == false, enforceNodeAllocatable?.contains("pods") == true {
            throw ProvisioningError("\(path): enforceNodeAllocatable: pods needs cgroupsPerQOS (the kubepods cgroup carries it)")
        }
        for (index, value) in (enforceNodeAllocatable ?? []).enumerated() where value != "pods" && value != "none" {
            throw ProvisioningError("\(path): enforceNodeAllocatable[\(index)]: \"\(value)\" is not supported (pods, or none); system-reserved and kube-reserved need cgroups the agent does not manage")
        }
        if let name = runtime, name.isEmpty || name.contains("\0") || (name.contains("/") && !name.hasPrefix("/")) {
            throw ProvisioningError("\(path): runtime: \"\(name)\" is not builtin, a runtime's name (crun, runc) or an absolute path")
        }
        if let name = runtime, name != "builtin", cgroupsPerQOS == false {
            throw ProvisioningError("\(path): runtime: \(name) needs cgroupsPerQOS (it finds its containers' cgroups by the pods')")
        }
        if let root = cgroupRoot {
            let components = root.split(separator: "/")
            guard root.hasPrefix("/"), !components.contains(".."), !components.contains("."), root.utf8.count < 256 else {
                throw ProvisioningError("\(path): cgroupRoot: \"\(root)\" is not an absolute cgroup path (like / or /edge)")
            }
        }
        if let factor = memoryThrottlingFactor, !(factor > 0 && factor <= 1) {
            throw ProvisioningError("\(path): memoryThrottlingFactor (\(factor)) must be above 0 and at most 1")
        }
        if let limit = podPidsLimit, limit != -1, !(1...4_194_304).contains(limit) {
            throw ProvisioningError("\(path): podPidsLimit (\(limit)) must be -1 (none) or 1 to 4194304")
        }
        for (field, values) in [("systemReserved", systemReserved), ("kubeReserved", kubeReserved)] {
            for (resource, quantity) in values ?? [:] where quantity.sign < 0 || quantity.value > 1 << 50 {
                throw ProvisioningError("\(path): \(field).\(resource) (\(quantity)) must be 0 to 2^50")
            }
        }
    }

    /// Whether pods' cgroups are systemd's slices and scopes: `cgroupDriver`, or by default
    /// where systemd runs the board with cgroup v2 and the built-in runtime (as the kubelet
    /// recommends), else cgroupfs. Refused: systemd where it cannot work.
    public func usesSystemdDriver(manager: any CgroupManager, systemdBooted: Bool = SystemdUnits.isBooted) throws(ProvisioningError) -> Bool {
        switch cgroupDriver {
        case "cgroupfs": return false
        case "systemd":
            guard systemdBooted else { throw ProvisioningError("cgroupDriver: systemd needs systemd running as init (PID 1); use cgroupfs") }
            guard manager.containerMountLayout == .unified else {
                throw ProvisioningError("cgroupDriver: systemd needs the unified cgroup hierarchy (cgroup v2), and this host has v1 controllers: boot with systemd.unified_cgroup_hierarchy=1, or use cgroupDriver: cgroupfs")
            }
            return true
        default:
            return systemdBooted && manager.containerMountLayout == .unified && (runtime ?? "builtin") == "builtin" && (cgroupRoot ?? "/") == "/"
        }
    }

    /// The pod cgroups on `manager`: `kubepods` carries capacity − reserved (the kubelet's
    /// enforced allocatable; hard eviction acts before it is reached) when enforced, limited to
    /// the controllers this host has.
    /// Refused: reservations that leave pods no memory, a process limit without the pids controller.
    public func podCgroups(manager: any CgroupManager, cpuCount: Int, memoryBytes: Int64, systemdBooted: Bool = SystemdUnits.isBooted) throws(ProvisioningError) -> PodCgroups {
        if memoryQoS == true, manager.containerMountLayout != .unified || !manager.controllerNames.contains("memory") {
            throw ProvisioningError("memoryQoS: needs cgroup v2 with its memory controller (memory.min and memory.high), which this host does not have")
        }
        if let limit = podPidsLimit, limit > 0, !manager.controllerNames.contains("pids") {
            throw ProvisioningError("podPidsLimit: the pids cgroup controller is not available on this host (enable it in the kernel command line or configuration, or remove podPidsLimit)")
        }
        let reservedMemory = reserved["memory"]?.value ?? 0
        if enforcesPodAllocatable, memoryBytes > 0, reservedMemory >= memoryBytes {
            throw ProvisioningError("systemReserved and kubeReserved memory (\(Quantity.bytes(reservedMemory))) leave nothing of this board's \(Quantity.bytes(memoryBytes)) for pods")
        }
        var limits: RuntimeSpec.Resources?
        if enforcesPodAllocatable {
            let reserved = self.reserved
            var resources = RuntimeSpec.Resources()
            let available = manager.controllerNames
            if available.contains("cpu") {
                let milli = max(0, Int64(cpuCount).multipliedSaturated(by: 1000) - (reserved["cpu"]?.milliValue ?? 0))
                var cpu = RuntimeSpec.Resources.CPU()
                cpu.shares = PodCgroups.shares(milliCPU: milli)
                resources.cpu = cpu
            }
            if available.contains("memory"), memoryBytes > 0 {
                let bytes = max(0, memoryBytes - min(memoryBytes, reserved["memory"]?.value ?? 0))
                resources.memory = RuntimeSpec.Resources.Memory(limit: bytes)
            }
            limits = resources
        }
        let root = (cgroupRoot ?? "/").split(separator: "/").map(String.init) + ["kubepods"]
        let systemd = try usesSystemdDriver(manager: manager, systemdBooted: systemdBooted) ? SystemdUnits() : nil
        return PodCgroups(manager: manager, root: root.joined(separator: "/"), nodeLimits: limits, podPidsLimit: podPidsLimit.flatMap { $0 > 0 ? $0 : nil },
                          systemd: systemd, memoryQoS: memoryQoS == true ? memoryThrottlingFactor ?? 0.9 : nil)
    }
}
