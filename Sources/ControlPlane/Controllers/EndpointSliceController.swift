import KubeModel
import Logging
import ServiceLifecycle

/// The endpoint slice controller: for each service with a selector, slices of at most 100
/// endpoints (one per pod with an address, ended pods left out) with kube's conditions: `ready`
/// (Ready and not terminating, or any when `publishNotReadyAddresses`), `serving` (Ready) and
/// `terminating`. Named target ports are resolved per pod, so pods that resolve differently
/// go into different slices. Slices carry the service's labels, `kubernetes.io/service-name`
/// and the managed-by label; others' slices are never touched.
public final class EndpointSliceController: Service, Sendable {
    static let managedBy = "endpointslice-controller.k8s.io"
    static let maxEndpointsPerSlice = 100

    let store: ObjectStore
    let logger: Logger
    let resync: Duration
    let writes: ControllerWrites
    /// The service range: no pod address in it becomes an endpoint.
    let serviceNetwork: IPv4Network

    public init(store: ObjectStore, logger: Logger, serviceNetwork: IPv4Network = ServiceAddressing.standard.network, resync: Duration = .seconds(30)) {
        self.store = store
        self.serviceNetwork = serviceNetwork
        self.logger = logger
        self.resync = resync
        writes = ControllerWrites(store: store, component: "endpointslice-controller")
    }

    public func run() async throws {
        try await ControllerLoop(store: store, resources: [.services, .pods, .endpointSlices], resync: resync).run(isRelevant: Self.isRelevant) { [self] in
            syncAll()
            return nil
        }
    }

    /// Service changes, this controller's slices changed by someone, and pod changes that move
    /// an endpoint: labels, address, phase, readiness, termination, node, hostname.
    static func isRelevant(_ change: Change) -> Bool {
        if change.resource == ResourceType.endpointSlices.storageKey {
            return change.object.string(at: ["metadata", "labels", EndpointSlice.managedByLabel]) == managedBy
                || change.previous?.string(at: ["metadata", "labels", EndpointSlice.managedByLabel]) == managedBy
        }
        guard change.resource == ResourceType.pods.storageKey, change.type == .modified else { return true }
        let keys: [[String]] = [["metadata", "labels"], ["metadata", "deletionTimestamp"], ["status", "podIP"], ["status", "phase"],
                                ["status", "conditions"], ["spec", "nodeName"], ["spec", "hostname"], ["spec", "subdomain"]]
        return keys.contains { change.object[path: $0] != change.previous?[path: $0] }
    }

    /// One pass over every service and this controller's slices.
    func syncAll() {
        do {
            let services = try store.list(.services, namespace: nil).items.compactMap { try? KubeJSON.decode(KubeService.self, from: $0) }
            var slicesByService: [String: [EndpointSlice]] = [:]
            for tree in try store.list(.endpointSlices, namespace: nil).items
            where tree.string(at: ["metadata", "labels", EndpointSlice.managedByLabel]) == Self.managedBy {
                guard let slice = try? KubeJSON.decode(EndpointSlice.self, from: tree) else { continue }
                let service = slice.metadata.labels?[EndpointSlice.serviceNameLabel] ?? ""
                slicesByService["\(slice.metadata.namespace ?? "")/\(service)", default: []].append(slice)
            }
            let selecting = services.filter { Self.selects($0) }
            let namespaces = Set(selecting.compactMap(\.metadata.namespace))
            var podsByNamespace: [String: [Pod]] = [:]
            for namespace in namespaces {
                podsByNamespace[namespace] = try store.list(.pods, namespace: namespace).items.compactMap { try? KubeJSON.decode(Pod.self, from: $0) }
                    .sorted { ($0.metadata.name ?? "") < ($1.metadata.name ?? "") }
            }
            let nodes = namespaces.isEmpty ? NodeAddresses.Index() : try NodeAddresses.load(store)
            var kept = Set<String>()
            for service in selecting {
                let key = "\(service.metadata.namespace ?? "")/\(service.metadata.name ?? "")"
                kept.insert(key)
                do {
                    try sync(service, pods: podsByNamespace[service.metadata.namespace ?? ""] ?? [], nodes: nodes, existing: slicesByService[key] ?? [])
                } catch {
                    logger.warning("endpoint slices of service \(key): \(error)")
                }
            }
            // Slices of services that are gone or no longer select pods.
            for (key, slices) in slicesByService where !kept.contains(key) {
                for slice in slices {
                    try? writes.delete(.endpointSlices, namespace: slice.metadata.namespace ?? "", name: slice.metadata.name ?? "", uid: slice.metadata.uid)
                }
            }
        } catch {
            logger.warning("endpoint slice pass failed: \(error)")
        }
    }

    /// Whether the controller keeps slices for the service: it has a selector (an empty one means
    /// endpoints kept by someone else, as in kube) and is not ExternalName.
    static func selects(_ service: KubeService) -> Bool {
        !(service.spec?.selector ?? [:]).isEmpty && service.serviceType != "ExternalName" && service.metadata.deletionTimestamp == nil
    }

    private func sync(_ service: KubeService, pods: [Pod], nodes: NodeAddresses.Index, existing: [EndpointSlice]) throws {
        let namespace = service.metadata.namespace ?? ""
        var desired = Self.desiredGroups(service, pods: pods) { pod, address in
            Self.mayServe(address, pod: pod, nodes: nodes, serviceNetwork: serviceNetwork)
        }
        // A service without endpoints still has one (empty) slice, as kube keeps a placeholder.
        if desired.isEmpty { desired = [EndpointGroup(ports: nil, endpoints: [])] }
        var unused = existing.sorted { ($0.metadata.name ?? "") < ($1.metadata.name ?? "") }
        let labels = Self.labels(service)
        let owner = ControllerWrites.controllerReference(to: service)
        for group in desired {
            let chunks = group.endpoints.isEmpty ? [[]] : stride(from: 0, to: group.endpoints.count, by: Self.maxEndpointsPerSlice).map {
                Array(group.endpoints[$0..<min($0 + Self.maxEndpointsPerSlice, group.endpoints.count)])
            }
            for chunk in chunks {
                if let index = unused.firstIndex(where: { $0.ports == group.ports }) ?? unused.indices.first {
                    let slice = unused.remove(at: index)
                    if slice.endpointList == chunk, slice.ports == group.ports, slice.metadata.labels == labels, slice.metadata.ownerReferences == [owner] { continue }
                    let name = slice.metadata.name ?? ""
                    let uid = slice.metadata.uid
                    let endpoints = try KubeJSON.tree(chunk)
                    let ports = try group.ports.map { try KubeJSON.tree($0) }
                    let labelTree = try KubeJSON.tree(labels)
                    let ownerTree = try KubeJSON.tree([owner])
                    try store.update(.endpointSlices, namespace: namespace, name: name) { object in
                        guard object.string(at: ["metadata", "uid"]) == uid else { return nil }
                        var next = object
                        next.set(["endpoints"], endpoints)
                        next.set(["ports"], ports)
                        next.set(["metadata", "labels"], labelTree)
                        next.set(["metadata", "ownerReferences"], ownerTree)
                        // Nothing the API would refuse, from this controller either.
                        try ObjectValidation.validate(next, resource: .endpointSlices)
                        return next
                    }
                } else {
                    var slice = EndpointSlice(metadata: ObjectMeta(namespace: namespace), addressType: "IPv4", endpoints: chunk, ports: group.ports)
                    slice.metadata.generateName = "\(service.metadata.name ?? "")-"
                    slice.metadata.labels = labels
                    slice.metadata.ownerReferences = [owner]
                    try writes.create(.endpointSlices, namespace: namespace, object: try KubeJSON.tree(slice))
                }
            }
        }
        for slice in unused {
            try writes.delete(.endpointSlices, namespace: namespace, name: slice.metadata.name ?? "", uid: slice.metadata.uid)
        }
    }

    /// Endpoints that share one port mapping.
    struct EndpointGroup: Equatable {
        var ports: [EndpointPort]?
        var endpoints: [Endpoint]
    }

    /// Whether a node's report of a pod's address may become an endpoint: an address traffic may
    /// go to, outside the service range, and the node's to give: one of its own addresses for a
    /// host-network pod; otherwise in its pod range, or outside every node's range and address
    /// and the API server's (pod networks that assign addresses their own way, as Calico does).
    /// A node cannot point a service at another node, its pods, or the API.
    static func mayServe(_ address: String, pod: Pod, nodes: NodeAddresses.Index, serviceNetwork: IPv4Network) -> Bool {
        guard IPv4Network.endpointAddressProblem(address) == nil, let value = IPv4Network.parseAddress(address), !serviceNetwork.contains(address: value) else {
            return false
        }
        guard let name = pod.spec?.nodeName, let node = nodes.byName[name] else { return false }
        if pod.spec?.hostNetwork == true { return node.addresses.contains(value) }
        if node.podNetwork?.contains(address: value) == true { return true }
        if nodes.apiAddresses.contains(value) { return false }
        return !nodes.byName.contains { other in
            other.key != name && (other.value.podNetwork?.contains(address: value) == true || other.value.addresses.contains(value))
        } && !node.addresses.contains(value)
    }

    /// The endpoints of the pods (in name order) the service selects, grouped by their resolved
    /// ports; `accepts` decides whether a pod's address may serve.
    static func desiredGroups(_ service: KubeService, pods: [Pod], accepts: (Pod, String) -> Bool = { _, _ in true }) -> [EndpointGroup] {
        let selector = service.spec?.selector ?? [:]
        let publishNotReady = service.spec?.publishNotReadyAddresses ?? false
        var groups: [EndpointGroup] = []
        var groupIndex: [[EndpointPort]?: Int] = [:]
        for pod in pods {
            let labels = pod.metadata.labels ?? [:]
            guard selector.allSatisfy({ labels[$0.key] == $0.value }) else { continue }
            guard pod.status?.phase != .succeeded, pod.status?.phase != .failed, let spec = pod.spec, spec.nodeName != nil,
                  let address = pod.status?.podIP, accepts(pod, address) else { continue }
            guard let ports = resolvedPorts(service, spec) else { continue }
            let podReady = pod.status?.conditions?.contains { $0.type == "Ready" && $0.status == .true } ?? false
            let terminating = pod.metadata.deletionTimestamp != nil
            var endpoint = Endpoint(addresses: [address],
                                    conditions: EndpointConditions(ready: publishNotReady || (podReady && !terminating), serving: publishNotReady || podReady, terminating: terminating),
                                    targetRef: ObjectReference(kind: "Pod", namespace: pod.metadata.namespace, name: pod.metadata.name, uid: pod.metadata.uid),
                                    nodeName: spec.nodeName)
            if let hostname = spec.hostname, spec.subdomain == service.metadata.name { endpoint.hostname = hostname }
            if let index = groupIndex[ports] {
                groups[index].endpoints.append(endpoint)
            } else {
                groupIndex[ports] = groups.count
                groups.append(EndpointGroup(ports: ports, endpoints: [endpoint]))
            }
        }
        return groups
    }

    /// The service's ports as this pod serves them; a named target port the pod lacks leaves
    /// that port out (the pod serves the others). Nil when the pod serves none of them.
    static func resolvedPorts(_ service: KubeService, _ spec: PodSpec) -> [EndpointPort]? {
        let servicePorts = service.spec?.ports ?? []
        if servicePorts.isEmpty { return [] }  // headless without ports: addresses only
        var named: [String: Int32] = [:]  // "name/protocol" → container port
        for port in spec.containers.lazy.flatMap({ $0.ports ?? [] }) {
            if let name = port.name { named["\(name)/\(port.protocol?.rawValue ?? "TCP")"] = named["\(name)/\(port.protocol?.rawValue ?? "TCP")"] ?? port.containerPort }
        }
        var result: [EndpointPort] = []
        for servicePort in servicePorts {
            let portProtocol = servicePort.protocol ?? "TCP"
            let number: Int32?
            switch servicePort.targetPort {
            case .int(let value)?: number = value
            case .string(let name)?: number = named["\(name)/\(portProtocol)"]
            case nil: number = servicePort.port
            }
            guard let number else { continue }
            var port = EndpointPort(name: servicePort.name ?? "", port: number, protocol: portProtocol)
            port.appProtocol = servicePort.appProtocol
            result.append(port)
        }
        return result.isEmpty ? nil : result
    }

    /// The service's labels (without kube's reserved ones) and the slice labels.
    static func labels(_ service: KubeService) -> [String: String] {
        var labels = (service.metadata.labels ?? [:]).filter { $0.key != EndpointSlice.serviceNameLabel && $0.key != EndpointSlice.managedByLabel }
        labels[EndpointSlice.serviceNameLabel] = service.metadata.name ?? ""
        labels[EndpointSlice.managedByLabel] = managedBy
        if service.isHeadless { labels["service.kubernetes.io/headless"] = "" }
        return labels
    }
}

/// A node's pod range and own addresses, as its endpoints are checked against.
struct NodeAddresses {
    var podNetwork: IPv4Network?
    var addresses: Set<UInt32>

    /// Every node's, and the API server's own addresses (the `kubernetes` service's endpoints).
    struct Index {
        var byName: [String: NodeAddresses] = [:]
        var apiAddresses: Set<UInt32> = []
    }

    static func load(_ store: ObjectStore) throws -> Index {
        var index = Index()
        for tree in try store.list(.nodes, namespace: nil).items {
            guard let name = tree.string(at: ["metadata", "name"]) else { continue }
            let podNetwork = tree.string(at: ["spec", "podCIDR"]).flatMap { try? IPv4Network($0) }
            let addresses = (tree[path: ["status", "addresses"]]?.arrayValue ?? []).compactMap { $0.string(at: ["address"]).flatMap(IPv4Network.parseAddress) }
            index.byName[name] = NodeAddresses(podNetwork: podNetwork, addresses: Set(addresses))
        }
        for endpoint in try store.get(.endpointSlices, namespace: "default", name: "kubernetes")?["endpoints"]?.arrayValue ?? [] {
            for address in endpoint["addresses"]?.arrayValue ?? [] { if let value = address.stringValue.flatMap(IPv4Network.parseAddress) { index.apiAddresses.insert(value) } }
        }
        return index
    }
}
