#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif
import KubeModel
import Synchronization
import SystemSupport

/// The node's devices (agent.yaml `devices` and the built-in classes): what exists now, which
/// container holds which, and the extended resources that makes. Assignments are made when a
/// pod is admitted, kept on disk (rewritten only when they change) so that an agent restart
/// gives every running container the same devices, and released when the pod ends.
public final class DeviceManager: Sendable {
    /// One device as a container gets it: a node, or every node of a grouped class.
    public struct Device: Sendable, Hashable {
        /// The device's identity: its path (a grouped class: its name).
        public var key: String
        public var nodes: [HostDevice]
    }

    /// A container's devices of one class, as the container gets them.
    public struct ContainerDevices: Sendable, Hashable {
        public var deviceClass: DeviceClass
        public var nodes: [HostDevice]
        public init(deviceClass: DeviceClass, nodes: [HostDevice]) {
            self.deviceClass = deviceClass
            self.nodes = nodes
        }
    }

    /// A container's devices of one resource.
    struct Assignment: Codable, Sendable, Hashable {
        var pod: String
        var container: String
        var resource: String
        var devices: [String]
        /// A device plugin's answer to `Allocate` for this container.
        var allocation: DevicePluginMessages.ContainerAllocation?
        /// The device numbers the container was given (`c188:0`): a device is busy while any
        /// holder of its numbers runs, whichever class found it and even after it was unplugged
        /// (another device may come back with the same numbers).
        var numbers: [String]?
    }

    /// A registered device plugin: where it listens, what it asked for, its devices' health.
    struct Plugin: Sendable {
        var endpoint: String
        var options: DevicePluginMessages.Options
        var devices: [String: Bool] = [:]
        var connected = true
    }

    private struct Checkpoint: Codable {
        var assignments: [Assignment]
        /// The resources device plugins served: after a restart they are known (none allocatable)
        /// until their plugin registers again, so a pod asking for one waits instead of running
        /// without its device.
        var pluginResources: [String]?
    }

    /// What changed in a rescan.
    public struct Change: Sendable {
        /// The advertised amounts changed (the Node's status should follow now).
        public var resourcesChanged = false
        /// Devices held by containers that are gone now.
        public var unplugged: [(pod: String, container: String, resource: String, device: String)] = []
        /// Devices held by containers that came back.
        public var replugged: [(pod: String, container: String, resource: String, device: String)] = []
    }

    struct State {
        var found: [String: [Device]] = [:]
        var plugins: [String: Plugin] = [:]
        var savedPluginResources: [String] = []
        var assignments: [Assignment] = []
        var lastSaved: [Assignment]?
    }

    public let classes: [DeviceClass]
    let checkpointPath: String
    let sysfs: String
    let state = Mutex(State())

    /// `checkpointPath`: where assignments are kept; a damaged file is reported by ``loadError``
    /// and the agent starts with none (pods are admitted and assigned again).
    public init(classes: [DeviceClass], checkpointPath: String, sysfs: String = "/sys") {
        self.classes = classes
        self.checkpointPath = checkpointPath
        self.sysfs = sysfs
        var loaded: [Assignment] = []
        var pluginResources: [String] = []
        var problem: String?
        do {
            if let bytes = try AtomicFile.read(checkpointPath) {
                let checkpoint = try KubeJSON.decode(Checkpoint.self, from: bytes, validation: .discard)
                pluginResources = checkpoint.pluginResources ?? []
                // A plugin device whose Allocate answer never came is not given (the container
                // would start without what the plugin sets up).
                let classResources = Set(classes.map(\.resourceName))
                loaded = checkpoint.assignments.filter { classResources.contains($0.resource) || $0.allocation != nil }
            }
        } catch {
            problem = "device assignments \(checkpointPath) are damaged (\(error)): starting with none"
        }
        loadError = problem
        state.withLock { state in
            state.assignments = loaded
            state.lastSaved = loaded
            for resource in pluginResources { state.plugins[resource] = Plugin(endpoint: "", options: .init(), connected: false) }
            state.savedPluginResources = pluginResources.sorted()
        }
        _ = rescan()
    }

    /// Why the saved assignments could not be read, when they could not.
    public let loadError: String?

    // MARK: discovery

    /// Looks for every class's devices again; says what changed.
    @discardableResult
    public func rescan() -> Change {
        var found: [String: [Device]] = [:]
        for deviceClass in classes { found[deviceClass.name] = discover(deviceClass) }
        return state.withLock { state in
            var change = Change()
            let before = resources(state)
            let previous = state.found
            state.found = found
            change.resourcesChanged = resources(state) != before
            for assignment in state.assignments {
                let name = String(assignment.resource.dropFirst(DeviceClass.resourcePrefix.count))
                let was = Set(previous[name]?.map(\.key) ?? []), now = Set(found[name]?.map(\.key) ?? [])
                for key in assignment.devices {
                    if was.contains(key) && !now.contains(key) { change.unplugged.append((assignment.pod, assignment.container, assignment.resource, key)) }
                    if !was.contains(key) && now.contains(key) && !previous.isEmpty { change.replugged.append((assignment.pod, assignment.container, assignment.resource, key)) }
                }
            }
            return change
        }
    }

    // MARK: resources

    /// Each class's resource: capacity counts the devices found and those held but unplugged,
    /// allocatable only the devices found (times `perContainer`).
    public func resources() -> [String: DeviceAmounts] {
        state.withLock { resources($0) }
    }

    func resources(_ state: State) -> [String: DeviceAmounts] {
        var result: [String: DeviceAmounts] = [:]
        for deviceClass in classes {
            let found = Set(state.found[deviceClass.name]?.map(\.key) ?? [])
            let held = Set(state.assignments.filter { $0.resource == deviceClass.resourceName }.flatMap(\.devices))
            let share = Int64(deviceClass.perContainer ?? 1)
            result[deviceClass.resourceName] = DeviceAmounts(capacity: Int64(found.union(held).count) * share, allocatable: Int64(found.count) * share)
        }
        // A plugin's devices: healthy ones are allocatable (none while it is disconnected).
        for (resource, plugin) in state.plugins {
            let held = Set(state.assignments.filter { $0.resource == resource }.flatMap(\.devices))
            let healthy = plugin.connected ? plugin.devices.filter(\.value).count : 0
            result[resource] = DeviceAmounts(capacity: Int64(Set(plugin.devices.keys).union(held).count), allocatable: Int64(healthy))
        }
        return result
    }

    // MARK: assignment

    /// Picks devices for every container of `pod` that asks for a device resource (the kubelet's
    /// device manager allocation at admission); a pod that holds devices already keeps them.
    /// A refusal is the kubelet's `UnexpectedAdmissionError`.
    public func allocate(_ pod: Pod) async -> PodAdmission.Rejection? {
        guard let uid = pod.metadata.uid, let spec = pod.spec else { return nil }
        // A plugin that prefers some devices is asked first (outside the lock: admission runs one
        // pod at a time, so the devices it saw as free stay free).
        var preferred: [String: [String]] = [:]
        var unanswered = Set<String>()  // a plugin that failed once is not asked again for this pod
        for container in spec.containers {
            for (resource, count) in Pod.extendedRequests(container) {
                guard let (socket, available) = preferenceQuery(resource, pod: uid), !unanswered.contains(socket),
                      available.count > Int(min(count, 1 << 20)) else { continue }
                let request = DevicePluginMessages.preferredAllocationRequest(available: available, size: Int(count))
                guard let answer = try? await GRPCUnixTransport.unary(socket: socket, method: "/v1beta1.DevicePlugin/GetPreferredAllocation", request: request),
                      let ids = try? DevicePluginMessages.preferredDevices(decoding: answer) else {
                    unanswered.insert(socket)
                    continue
                }
                if ids.count == Int(count), Set(ids).count == ids.count, Set(ids).isSubset(of: available) { preferred["\(container.name)|\(resource)"] = ids }
            }
        }
        let result: (made: [Assignment], rejection: PodAdmission.Rejection?) = state.withLock { state in
            if state.assignments.contains(where: { $0.pod == uid }) { return ([], nil) }
            var made: [Assignment] = []
            func occupancy(_ device: Device, excludingPod: Bool) -> Int {
                let numbers = Set(device.nodes.map(\.number))
                return (state.assignments + made).filter { !(excludingPod && $0.pod == uid) && !numbers.isDisjoint(with: $0.numbers ?? []) }.count
            }
            // App containers first (they run together), then init containers, which run one at a
            // time and may use what this pod's app containers hold.
            // Sidecars (restartable init containers) run with the app containers.
            let initContainers = spec.initContainers ?? []
            for (containers, reusing) in [(spec.containers + initContainers.filter { $0.restartPolicy == .always }, false),
                                          (initContainers.filter { $0.restartPolicy != .always }, true)] {
                for container in containers {
                    for (resource, count) in Pod.extendedRequests(container).sorted(by: { $0.key < $1.key }) {
                        if let plugin = state.plugins[resource] {
                            // A plugin's device goes to one container at a time.
                            let busy = Set((state.assignments + made).filter { $0.resource == resource && !(reusing && $0.pod == uid) }.flatMap(\.devices))
                            let free = plugin.connected ? plugin.devices.filter { $0.value && !busy.contains($0.key) }.keys.sorted() : []
                            guard Int64(free.count) >= count else {
                                return ([], PodAdmission.Rejection(
                                    reason: "UnexpectedAdmissionError",
                                    message: "Allocate failed due to requested number of devices unavailable for \(resource). Requested: \(count), Available: \(free.count), which is unexpected"))
                            }
                            let chosen = preferred["\(container.name)|\(resource)"].flatMap { Set($0).isSubset(of: Set(free)) ? $0 : nil } ?? Array(free.prefix(Int(count)))
                            made.append(Assignment(pod: uid, container: container.name, resource: resource, devices: chosen))
                            continue
                        }
                        guard let deviceClass = classes.first(where: { $0.resourceName == resource }) else { continue }
                        let limit = deviceClass.perContainer ?? 1
                        let free = (state.found[deviceClass.name] ?? [])
                            .map { (key: $0.key, numbers: $0.nodes.map(\.number), used: occupancy($0, excludingPod: reusing)) }
                            .filter { $0.used < limit }
                            .sorted { ($0.used, $0.key) < ($1.used, $1.key) }
                        guard Int64(free.count) >= count else {
                            return ([], PodAdmission.Rejection(
                                reason: "UnexpectedAdmissionError",
                                message: "Allocate failed due to requested number of devices unavailable for \(resource). Requested: \(count), Available: \(free.count), which is unexpected"))
                        }
                        let chosen = free.prefix(Int(count))
                        made.append(Assignment(pod: uid, container: container.name, resource: resource, devices: chosen.map(\.key),
                                               numbers: chosen.flatMap(\.numbers)))
                    }
                }
            }
            state.assignments += made
            return (made, nil)
        }
        if let rejection = result.rejection { return rejection }
        // Each plugin container's Allocate, as the kubelet calls it at admission.
        for assignment in result.made {
            guard let socket = state.withLock({ $0.plugins[assignment.resource]?.endpoint }) else { continue }
            do {
                let answer = try await GRPCUnixTransport.unary(socket: socket, method: "/v1beta1.DevicePlugin/Allocate",
                                                               request: DevicePluginMessages.allocateRequest([assignment.devices]))
                guard let allocation = try DevicePluginMessages.allocations(decoding: answer).first else {
                    throw GRPCUnixTransport.CallError(description: "the answer has no container response")
                }
                let numbers = allocation.devices.compactMap { HostDevice.at($0.hostPath)?.number }
                state.withLock { state in
                    if let index = state.assignments.firstIndex(of: assignment) {
                        state.assignments[index].allocation = allocation
                        state.assignments[index].numbers = numbers
                    }
                }
            } catch {
                state.withLock { $0.assignments.removeAll { $0.pod == uid } }
                return PodAdmission.Rejection(reason: "UnexpectedAdmissionError",
                                              message: "Allocate failed due to rpc error: \(error) (\(assignment.resource)), which is unexpected")
            }
        }
        // The kubelet fails an allocation whose checkpoint cannot be written: after a restart the
        // devices would otherwise look free while the pod runs.
        if !result.made.isEmpty, let problem = save() {
            state.withLock { $0.assignments.removeAll { $0.pod == uid } }
            return PodAdmission.Rejection(reason: "UnexpectedAdmissionError", message: "Allocate failed due to \(problem), which is unexpected")
        }
        return nil
    }

    /// The devices assigned to one container, as its nodes now are; a device that was unplugged
    /// is an error naming it.
    public func devices(pod uid: String, container: String) throws(DeviceError) -> [ContainerDevices] {
        try state.withLock { state throws(DeviceError) in
            var result: [ContainerDevices] = []
            for assignment in state.assignments where assignment.pod == uid && assignment.container == container {
                guard let deviceClass = classes.first(where: { $0.resourceName == assignment.resource }) else { continue }
                var nodes: [HostDevice] = []
                for key in assignment.devices {
                    guard let device = state.found[deviceClass.name]?.first(where: { $0.key == key }) else {
                        throw DeviceError("\(assignment.resource): device \(key), assigned to this container, is not on the node (unplugged?)")
                    }
                    nodes += device.nodes
                }
                result.append(ContainerDevices(deviceClass: deviceClass, nodes: nodes))
            }
            return result
        }
    }

    /// What each container of a pod holds: resource → device keys (for the pod's status).
    public func assignments(pod uid: String) -> [String: [String: [String]]] {
        state.withLock { state in
            var result: [String: [String: [String]]] = [:]
            for assignment in state.assignments where assignment.pod == uid {
                result[assignment.container, default: [:]][assignment.resource, default: []] += assignment.devices
            }
            return result
        }
    }

    /// Whether a held device is on the node now.
    public func isPresent(resource: String, device key: String) -> Bool {
        let name = String(resource.dropFirst(DeviceClass.resourcePrefix.count))
        return state.withLock { state in
            if let plugin = state.plugins[resource] { return plugin.connected && plugin.devices[key] == true }
            return state.found[name]?.contains { $0.key == key } ?? false
        }
    }

    /// Frees what a pod held (it ended or is gone).
    public func release(pod uid: String) {
        let changed = state.withLock { state in
            let before = state.assignments.count
            state.assignments.removeAll { $0.pod == uid }
            return state.assignments.count != before
        }
        if changed { save() }
    }

    /// Frees what pods other than `live` held (after a restart: pods deleted meanwhile).
    public func retain(pods live: Set<String>) {
        let changed = state.withLock { state in
            let before = state.assignments.count
            state.assignments.removeAll { !live.contains($0.pod) }
            return state.assignments.count != before
        }
        if changed { save() }
    }

    /// The pods holding devices.
    public var holders: Set<String> { state.withLock { Set($0.assignments.map(\.pod)) } }

    /// Writes the assignments when they differ from the file's (atomically: a power cut leaves
    /// the old or the new set); the problem when they could not be written.
    @discardableResult
    func save() -> String? {
        let saved: (assignments: [Assignment], plugins: [String])? = state.withLock { state in
            let sorted = state.assignments.sorted { ($0.pod, $0.container, $0.resource) < ($1.pod, $1.container, $1.resource) }
            let plugins = state.plugins.keys.sorted()
            guard sorted != state.lastSaved || plugins != state.savedPluginResources else { return nil }
            state.lastSaved = sorted
            state.savedPluginResources = plugins
            return (sorted, plugins)
        }
        guard let saved else { return nil }
        do {
            let bytes = try KubeJSON.encode(Checkpoint(assignments: saved.assignments, pluginResources: saved.plugins.isEmpty ? nil : saved.plugins))
            if let slash = checkpointPath.lastIndex(of: "/") { try FileTree.makeDirectories(String(checkpointPath[..<slash]), mode: 0o700) }
            try AtomicFile.write(bytes, to: checkpointPath, mode: 0o600)
            return nil
        } catch {
            state.withLock { $0.lastSaved = nil }
            let problem = "device assignments not written to \(checkpointPath): \(error)"
            saveError.withLock { $0 = problem }
            return problem
        }
    }

    /// The last failure to write the assignments, for the agent's log; cleared when read.
    public func takeSaveError() -> String? { saveError.withLock { error in defer { error = nil }; return error } }
    private let saveError = Mutex<String?>(nil)
}

/// How much of one device resource the node has: all (held ones that were unplugged included)
/// and what may be given out.
public struct DeviceAmounts: Sendable, Hashable {
    public var capacity: Int64
    public var allocatable: Int64
}

/// A container's devices cannot be given to it; the message names the device.
public struct DeviceError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}
