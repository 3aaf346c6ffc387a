import KubeModel
import Logging
import ServiceLifecycle
import Synchronization

/// Gives every node a pod range (`spec.podCIDR`, `spec.podCIDRs`) from the cluster CIDR, as
/// kube-controller-manager's node IPAM does: the lowest free subnet of the node mask size, set
/// once and never changed. Nodes that already carry a range keep it (and it is counted as used).
public struct NodeIPAMService: Service {
    let store: ObjectStore
    let logger: Logger
    let clusterCIDR: IPv4Network
    let nodeMaskSize: Int
    let resyncInterval: Duration
    /// Nodes already reported as left without a range (each is said once, not at every pass:
    /// a pass runs at every change of such a node, and its heartbeats are changes).
    private let unplaced = UnplacedNodes()

    final class UnplacedNodes: Sendable {
        let names = Mutex<Set<String>>([])
    }

    public init(store: ObjectStore, logger: Logger, clusterCIDR: IPv4Network, nodeMaskSize: Int = 24, resyncInterval: Duration = .seconds(30)) {
        self.store = store
        self.logger = logger
        self.clusterCIDR = clusterCIDR
        self.nodeMaskSize = nodeMaskSize
        self.resyncInterval = resyncInterval
    }

    public func run() async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { [self] in
                while !Task.isCancelled {
                    let subscription = try store.watch(.nodes, namespace: nil, after: store.currentRevision)
                    defer { store.cancel(subscription) }
                    for await change in subscription.changes.cancelOnGracefulShutdown()
                    where change.type == .deleted || change.object.string(at: ["spec", "podCIDR"]) == nil {
                        // a node without a range, or a range freed
                        allocateAll()
                    }
                    if Task.isCancelled || Task.isShuttingDownGracefully { return }
                }
            }
            group.addTask { [self] in
                while !Task.isShuttingDownGracefully && !Task.isCancelled {
                    allocateAll()
                    try? await cancelWhenGracefulShutdown { try await Task.sleep(for: self.resyncInterval) }
                }
            }
            try? await gracefulShutdown()
            group.cancelAll()
        }
    }

    /// One pass: ranges for every node without one.
    func allocateAll() {
        do {
            let nodes = try store.list(.nodes, namespace: nil).items.compactMap { try? KubeJSON.decode(Node.self, from: $0) }
            var used = nodes.compactMap { $0.spec?.podCIDR }.compactMap { try? IPv4Network($0) }
            var exhausted = false
            var left: [String] = []
            defer { reportUnplaced(left) }
            for node in nodes where node.spec?.podCIDR == nil && node.metadata.deletionTimestamp == nil {
                guard let name = node.metadata.name else { continue }
                // Once one finds no range, none of the rest will: no search per node.
                if exhausted {
                    left.append(name)
                    continue
                }
                guard let free = clusterCIDR.subnets(prefixLength: nodeMaskSize).first(where: { subnet in !used.contains { $0.overlaps(subnet) } }) else {
                    exhausted = true
                    left.append(name)
                    continue
                }
                var assigned = false
                try store.update(.nodes, namespace: "", name: name) { current in
                    guard var latest = try? KubeJSON.decode(Node.self, from: current), latest.spec?.podCIDR == nil else { return nil }
                    var spec = latest.spec ?? NodeSpec()
                    spec.podCIDR = free.description
                    spec.podCIDRs = [free.description]
                    latest.spec = spec
                    assigned = true
                    return try KubeJSON.tree(latest)
                }
                if assigned {
                    used.append(free)
                    logger.info("node \(name): pod CIDR \(free)")
                }
            }
        } catch {
            logger.warning("node IPAM pass failed: \(error)")
        }
    }

    /// Says which nodes are newly without a range; nodes placed or gone since are forgotten.
    private func reportUnplaced(_ names: [String]) {
        let new = unplaced.names.withLock { known -> [String] in
            let new = names.filter { !known.contains($0) }
            known = Set(names)
            return new
        }
        guard !new.isEmpty else { return }
        let shown = new.prefix(10).joined(separator: ", ") + (new.count > 10 ? " and \(new.count - 10) more" : "")
        logger.warning("no free /\(nodeMaskSize) left in the cluster CIDR \(clusterCIDR) for \(new.count) node(s): \(shown) (\(names.count) in all without a pod range; a larger --cluster-cidr or --node-cidr-mask-size makes room)")
    }
}
