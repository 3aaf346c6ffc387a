import KubeModel

// The devices of registered device plugins (``DevicePluginService``): their health, the
// preferred choice, and what their `Allocate` answers gave each container.
extension DeviceManager {
    /// The plugin socket and the devices free for `pod` of a plugin resource that prefers its own
    /// choice; nil otherwise.
    func preferenceQuery(_ resource: String, pod uid: String) -> (String, [String])? {
        state.withLock { state in
            guard let plugin = state.plugins[resource], plugin.connected, plugin.options.preferredAllocationAvailable else { return nil }
            let busy = Set(state.assignments.filter { $0.resource == resource && $0.pod != uid }.flatMap(\.devices))
            return (plugin.endpoint, plugin.devices.filter { $0.value && !busy.contains($0.key) }.keys.sorted())
        }
    }

    /// What device plugins gave one container at admission (environment, device nodes, mounts).
    func pluginAllocations(pod uid: String, container: String) -> [DevicePluginMessages.ContainerAllocation] {
        state.withLock { state in
            state.assignments.filter { $0.pod == uid && $0.container == container }.compactMap(\.allocation)
        }
    }

    /// Calls `PreStartContainer` of every plugin that asked for it, with the container's devices.
    /// A plugin's devices are started only while the plugin is registered (after an agent
    /// restart, once it registered again), as the kubelet does; the call gets 30 s, the kubelet's.
    public func preStart(pod uid: String, container: String) async throws(DeviceError) {
        let calls: [(socket: String?, resource: String, ids: [String])] = state.withLock { state in
            state.assignments.filter { $0.pod == uid && $0.container == container && $0.allocation != nil }.compactMap { assignment in
                guard let plugin = state.plugins[assignment.resource], plugin.connected, !plugin.endpoint.isEmpty else {
                    return (nil, assignment.resource, assignment.devices)
                }
                return plugin.options.preStartRequired ? (plugin.endpoint, assignment.resource, assignment.devices) : nil
            }
        }
        for call in calls {
            guard let socket = call.socket else { throw DeviceError("\(call.resource): its device plugin is not registered (yet)") }
            do {
                _ = try await GRPCUnixTransport.unary(socket: socket, method: "/v1beta1.DevicePlugin/PreStartContainer",
                                                      request: DevicePluginMessages.preStartRequest(call.ids), timeout: .seconds(30))
            } catch {
                throw DeviceError("\(call.resource): the device plugin's PreStartContainer failed: \(error)")
            }
        }
    }

    /// A plugin registered (again): it serves `resource` at `socket`; its devices come with its first list.
    func registerPlugin(resource: String, socket: String, options: DevicePluginMessages.Options) {
        let isNew = state.withLock { state in
            let known = state.plugins[resource]?.devices ?? [:]
            let isNew = state.plugins[resource] == nil
            state.plugins[resource] = Plugin(endpoint: socket, options: options, devices: known.mapValues { _ in false })
            return isNew
        }
        if isNew { save() }
    }

    /// A plugin's ListAndWatch sent its devices; true when the advertised amounts changed.
    @discardableResult
    func updatePlugin(resource: String, socket: String, devices: [(id: String, healthy: Bool)]) -> Bool {
        return state.withLock { state in
            guard state.plugins[resource]?.endpoint == socket else { return false }
            let before = resources(state)
            state.plugins[resource]?.devices = Dictionary(devices.map { ($0.id, $0.healthy) }, uniquingKeysWith: { $0 && $1 })
            state.plugins[resource]?.connected = true
            return resources(state) != before
        }
    }

    /// A plugin's watch ended: its devices stay in capacity, none is allocatable until it registers again.
    func disconnectPlugin(resource: String, socket: String) {
        state.withLock { state in
            guard state.plugins[resource]?.endpoint == socket else { return }
            state.plugins[resource]?.connected = false
        }
    }
}
