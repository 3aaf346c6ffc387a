import KubeModel
import Logging
import ServiceLifecycle
import Synchronization

/// Binds pending pods to nodes as changes arrive, with a periodic resync as a backstop.
/// Unschedulable pods get `PodScheduled=False` and a `FailedScheduling` event, once per reason.
public final class SchedulerService: Service, Sendable {
    let store: ObjectStore
    let logger: Logger
    let resyncInterval: Duration
    /// Whether the last pass left pods pending (node changes only matter then).
    private let pendingPods = Atomic<Bool>(true)

    public init(store: ObjectStore, logger: Logger, resyncInterval: Duration = .seconds(10)) {
        self.store = store
        self.logger = logger
        self.resyncInterval = resyncInterval
    }

    public func run() async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for resource in [ResourceType.pods, .nodes] {
                group.addTask { [self] in
                    while !Task.isCancelled {
                        let subscription = try store.watch(resource, namespace: nil, after: store.currentRevision)
                        defer { store.cancel(subscription) }
                        for await change in subscription.changes.cancelOnGracefulShutdown() where needsPass(change) { scheduleAll() }
                        if Task.isCancelled || Task.isShuttingDownGracefully { return }
                    }
                }
            }
            group.addTask { [self] in
                while !Task.isShuttingDownGracefully && !Task.isCancelled {
                    scheduleAll()
                    try? await cancelWhenGracefulShutdown { try await Task.sleep(for: self.resyncInterval) }
                }
            }
            try? await gracefulShutdown()
            group.cancelAll()
        }
    }

    /// A pass is needed for a new unbound pod, or for a node change while pods wait.
    private func needsPass(_ change: Change) -> Bool {
        if change.resource == ResourceType.pods.storageKey {
            return change.type != .deleted && change.object.string(at: ["spec", "nodeName"]) == nil
        }
        return pendingPods.load(ordering: .relaxed)
    }

    /// One scheduling pass over every pending pod.
    func scheduleAll() {
        do {
            let nodes = try store.list(.nodes, namespace: nil).items.compactMap { try? KubeJSON.decode(Node.self, from: $0) }
            let pods = try store.list(.pods, namespace: nil).items.compactMap { try? KubeJSON.decode(Pod.self, from: $0) }
            var podsByNode: [String: [Pod]] = [:]
            for pod in pods {
                guard let node = pod.spec?.nodeName, pod.status?.phase != .succeeded, pod.status?.phase != .failed else { continue }
                podsByNode[node, default: []].append(pod)
            }
            var stillPending = false
            for pod in pods where pod.spec?.nodeName == nil && pod.metadata.deletionTimestamp == nil {
                let decision = Scheduler.decide(pod, nodes: nodes, podsByNode: podsByNode)
                try apply(decision, to: pod)
                switch decision {
                case .bind(let node): podsByNode[node, default: []].append(pod)
                case .unschedulable: stillPending = true
                }
            }
            pendingPods.store(stillPending, ordering: .relaxed)
        } catch {
            logger.warning("scheduling pass failed: \(error)")
        }
    }

    private func apply(_ decision: Scheduler.Decision, to pod: Pod) throws {
        guard let name = pod.metadata.name, let namespace = pod.metadata.namespace else { return }
        var reported = false
        try store.update(.pods, namespace: namespace, name: name) { current in
            guard var latest = try? KubeJSON.decode(Pod.self, from: current), latest.spec?.nodeName == nil else { return nil }
            var status = latest.status ?? PodStatus()
            var conditions = (status.conditions ?? []).filter { $0.type != "PodScheduled" }
            let previous = status.conditions?.first { $0.type == "PodScheduled" }
            switch decision {
            case .bind(let node):
                latest.spec?.nodeName = node
                conditions.append(PodCondition(type: "PodScheduled", status: .true, lastTransitionTime: .now()))
            case .unschedulable(let message):
                if previous?.status == .false, previous?.message == message { return nil }
                conditions.append(PodCondition(type: "PodScheduled", status: .false, lastTransitionTime: .now(), reason: "Unschedulable", message: message))
                reported = true
            }
            status.conditions = conditions
            latest.status = status
            return try KubeJSON.tree(latest)
        }
        switch decision {
        case .bind(let node):
            logger.info("bound pod \(namespace)/\(name) to \(node)")
            try recordEvent(pod, type: "Normal", reason: "Scheduled", message: "Successfully assigned \(namespace)/\(name) to \(node)")
        case .unschedulable(let message):
            if reported { try recordEvent(pod, type: "Warning", reason: "FailedScheduling", message: message) }
        }
    }

    private func recordEvent(_ pod: Pod, type: String, reason: String, message: String) throws {
        guard let name = pod.metadata.name, let namespace = pod.metadata.namespace else { return }
        let eventName = "\(name).\(String(UInt64.random(in: 0...UInt64.max), radix: 16))"
        var event = Event(
            metadata: ObjectMeta(name: eventName, namespace: namespace),
            involvedObject: ObjectReference(kind: "Pod", namespace: namespace, name: name, uid: pod.metadata.uid, apiVersion: "v1"),
            reason: reason, message: message, type: type)
        event.source = EventSource(component: "default-scheduler")
        event.firstTimestamp = .now()
        event.lastTimestamp = event.firstTimestamp
        event.count = 1
        event.reportingComponent = "default-scheduler"
        event.setTypeMeta()
        _ = try store.create(.events, namespace: namespace, name: eventName, object: try KubeJSON.tree(event))
    }
}
