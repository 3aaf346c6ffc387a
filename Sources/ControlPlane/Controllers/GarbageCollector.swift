import KubeModel
import Logging
import ServiceLifecycle

/// The garbage collector of owner references, as kube-controller-manager's:
/// - an object whose owners are all gone (background deletion of the owner) is deleted; owner
///   references to objects that are gone are dropped while another owner remains;
/// - an owner deleted in the foreground (`foregroundDeletion` finalizer) has its dependents
///   deleted first (those with dependents of their own in the foreground too), and goes when
///   no dependent that blocks owner deletion is left;
/// - an owner deleted with orphan propagation (`orphan` finalizer) has its references removed
///   from its dependents, then goes.
///
/// An owner is found by its kind, namespace (the dependent's, or none for cluster-scoped
/// kinds), name and uid, never by uid alone: a reference names no object in another namespace.
/// References to kinds this server does not serve are left alone.
public final class GarbageCollector: Service, Sendable {
    static let orphanFinalizer = "orphan"
    static let foregroundFinalizer = "foregroundDeletion"

    let store: ObjectStore
    let logger: Logger
    let resync: Duration
    let writes: ControllerWrites

    /// The resources whose objects can own or be owned.
    static var resources: [ResourceType] { ResourceType.all.filter { !$0.isMetrics && $0 != .events } }

    /// Ended pods kept; beyond it the oldest go (kube's pod GC), so pods a node fails or
    /// evicts cannot pile up in the store without bound.
    let terminatedPodThreshold: Int

    /// Seconds an event is kept after it was stored (kube-apiserver's `--event-ttl`, 1 h).
    let eventTTL: Int64

    public init(store: ObjectStore, logger: Logger, resync: Duration = .seconds(30), terminatedPodThreshold: Int = 12_500, eventTTL: Int64 = 3600) {
        self.eventTTL = max(1, eventTTL)
        self.store = store
        self.logger = logger
        self.resync = resync
        self.terminatedPodThreshold = max(1, terminatedPodThreshold)
        writes = ControllerWrites(store: store, component: "garbage-collector-controller")
    }

    public func run() async throws {
        try await ControllerLoop(store: store, resources: Self.resources, resync: resync, minimumInterval: .seconds(1)).run(isRelevant: Self.isRelevant) { [self] in
            collect()
            return nil
        }
    }

    /// Deletions (owners gone), objects being deleted with a propagation finalizer, and changed owner references.
    static func isRelevant(_ change: Change) -> Bool {
        switch change.type {
        case .deleted: return true
        case .modified:
            if change.object[path: ["metadata", "deletionTimestamp"]] != nil, APIServer.hasFinalizers(change.object) { return true }
            let phase = change.object.string(at: ["status", "phase"])
            if phase != change.previous?.string(at: ["status", "phase"]), phase == "Succeeded" || phase == "Failed" { return true }
            return change.object[path: ["metadata", "ownerReferences"]] != change.previous?[path: ["metadata", "ownerReferences"]]
        default: return false
        }
    }

    /// One object as the collector sees it.
    struct Node {
        var resource: ResourceType
        var namespace: String
        var name: String
        var uid: String
        var deleting: Bool
        var finalizers: [String]
        var owners: [OwnerReference]
        var boundPod: Bool
        /// For pods: whether it ended (Succeeded or Failed), and when it was created.
        var ended = false
        var created: Int64 = 0
    }

    /// One pass over every object.
    func collect() {
        do {
            var nodes: [Node] = []
            var byKey: [String: Node] = [:]
            var dependents: [String: [(node: Node, blocking: Bool)]] = [:]
            for resource in Self.resources {
                for tree in try store.list(resource, namespace: nil).items {
                    guard let metadata = tree["metadata"].flatMap({ try? KubeJSON.decode(ObjectMeta.self, from: $0) }),
                          let name = metadata.name, let uid = metadata.uid else { continue }
                    var node = Node(resource: resource, namespace: metadata.namespace ?? "", name: name, uid: uid,
                                    deleting: metadata.deletionTimestamp != nil, finalizers: metadata.finalizers ?? [], owners: metadata.ownerReferences ?? [],
                                    boundPod: resource == .pods && tree.string(at: ["spec", "nodeName"]) != nil)
                    if resource == .pods {
                        let phase = tree.string(at: ["status", "phase"])
                        node.ended = phase == "Succeeded" || phase == "Failed"
                        node.created = metadata.creationTimestamp?.seconds ?? 0
                    }
                    nodes.append(node)
                    byKey[Self.key(resource, node.namespace, name)] = node
                }
            }
            // Dependents by owner uid, counting only references that resolve to that very owner.
            for node in nodes {
                for reference in node.owners {
                    guard let owner = owner(of: node, reference, in: byKey), owner.uid == reference.uid else { continue }
                    dependents[owner.uid, default: []].append((node, reference.blockOwnerDeletion == true))
                }
            }
            for node in nodes where node.deleting {
                do {
                    if node.finalizers.contains(Self.orphanFinalizer) { try orphan(node, dependents: dependents[node.uid] ?? []) }
                    if node.finalizers.contains(Self.foregroundFinalizer) { try deleteInForeground(node, dependents: dependents[node.uid] ?? [], all: dependents) }
                } catch {
                    logger.warning("garbage collection of \(node.resource.qualifiedName) \(node.namespace)/\(node.name): \(error)")
                }
            }
            // Namespaces and Nodes are never collected (their deletion has its own rules; a node
            // must not be able to delete itself by naming an owner that goes).
            for node in nodes where !node.deleting && !node.owners.isEmpty && node.resource != .namespaces && node.resource != .nodes {
                do {
                    try collectIfOrphaned(node, byKey: byKey, hasDependents: dependents[node.uid] != nil)
                } catch {
                    logger.warning("garbage collection of \(node.resource.qualifiedName) \(node.namespace)/\(node.name): \(error)")
                }
            }
            try collectEndedPods(nodes.filter { $0.resource == .pods && $0.ended && !$0.deleting })
            try expireEvents(now: .now())
        } catch {
            logger.warning("garbage collection pass failed: \(error)")
        }
    }

    /// Deletes events stored longer ago than the TTL (by the server's own creation time: the
    /// times inside an event come from whoever wrote it).
    func expireEvents(now: Timestamp) throws {
        var expired = 0
        for tree in try store.list(.events, namespace: nil).items {
            guard let created = tree.string(at: ["metadata", "creationTimestamp"]).flatMap({ try? Timestamp(rfc3339: $0) }),
                  now.seconds - created.seconds > eventTTL, let name = tree.string(at: ["metadata", "name"]) else { continue }
            _ = try? store.delete(.events, namespace: tree.string(at: ["metadata", "namespace"]) ?? "", name: name, expectedUID: tree.string(at: ["metadata", "uid"]))
            expired += 1
        }
        if expired > 0 { logger.debug("deleted \(expired) events older than \(eventTTL) s") }
    }

    /// Deletes the oldest ended pods beyond the threshold (through the usual pod deletion).
    private func collectEndedPods(_ ended: [Node]) throws {
        let surplus = ended.count - terminatedPodThreshold
        guard surplus > 0 else { return }
        logger.info("deleting \(surplus) ended pods beyond the threshold of \(terminatedPodThreshold)")
        for pod in ended.sorted(by: { ($0.created, $0.name) < ($1.created, $1.name) }).prefix(surplus) {
            // Ended: nothing runs any more, so no node needs to confirm (kube's pod GC deletes
            // with grace period 0 too).
            try writes.delete(.pods, namespace: pod.namespace, name: pod.name, uid: pod.uid)
        }
    }

    private static func key(_ resource: ResourceType, _ namespace: String, _ name: String) -> String {
        "\(resource.storageKey)\u{0}\(namespace)\u{0}\(name)"
    }

    private enum Resolution {
        case present
        case absent
        case unknown
    }

    /// The stored object a reference names, if this server serves its kind.
    private func owner(of node: Node, _ reference: OwnerReference, in byKey: [String: Node]) -> Node? {
        guard let resource = ResourceType.find(apiVersion: reference.apiVersion, kind: reference.kind) else { return nil }
        // A cluster-scoped object cannot be owned by a namespaced one.
        if resource.namespaced && !node.resource.namespaced { return nil }
        return byKey[Self.key(resource, resource.namespaced ? node.namespace : "", reference.name)]
    }

    private func resolve(_ node: Node, _ reference: OwnerReference, in byKey: [String: Node]) -> Resolution {
        guard let resource = ResourceType.find(apiVersion: reference.apiVersion, kind: reference.kind), Self.resources.contains(resource) else { return .unknown }
        if resource.namespaced && !node.resource.namespaced { return .unknown }
        return owner(of: node, reference, in: byKey)?.uid == reference.uid ? .present : .absent
    }

    /// Deletes an object whose owners are all gone; drops references to gone owners otherwise.
    private func collectIfOrphaned(_ node: Node, byKey: [String: Node], hasDependents: Bool) throws {
        var resolutions = node.owners.map { resolve(node, $0, in: byKey) }
        guard resolutions.contains(.absent) else { return }
        // The lists were taken one resource after another: an owner created meanwhile is
        // looked up again before anything is deleted or dropped.
        for (index, reference) in node.owners.enumerated() where resolutions[index] == .absent {
            guard let resource = ResourceType.find(apiVersion: reference.apiVersion, kind: reference.kind) else { continue }
            let live = try store.get(resource, namespace: resource.namespaced ? node.namespace : "", name: reference.name)
            if live?.string(at: ["metadata", "uid"]) == reference.uid { resolutions[index] = .present }
        }
        guard resolutions.contains(.absent) else { return }
        if resolutions.allSatisfy({ $0 == .absent }) {
            // Re-read: the references may have changed since the list.
            guard let current = try store.get(node.resource, namespace: node.namespace, name: node.name), current.string(at: ["metadata", "uid"]) == node.uid,
                  let owners = current[path: ["metadata", "ownerReferences"]].flatMap({ try? KubeJSON.decode([OwnerReference].self, from: $0) }),
                  owners == node.owners else { return }
            logger.info("deleting \(node.resource.qualifiedName) \(node.namespace)/\(node.name): its owners are gone")
            try delete(node, foreground: false)
            return
        }
        let gone = Set(zip(node.owners, resolutions).filter { $0.1 == .absent }.map(\.0.uid))
        try store.update(node.resource, namespace: node.namespace, name: node.name) { object in
            guard object.string(at: ["metadata", "uid"]) == node.uid, let references = object[path: ["metadata", "ownerReferences"]]?.arrayValue else { return nil }
            let kept = references.filter { !gone.contains($0.string(at: ["uid"]) ?? "") }
            guard kept.count != references.count, !kept.isEmpty else { return nil }
            var next = object
            next.set(["metadata", "ownerReferences"], .array(kept))
            return next
        }
    }

    /// Orphan propagation: the dependents lose their references to the owner, then it goes.
    private func orphan(_ owner: Node, dependents: [(node: Node, blocking: Bool)]) throws {
        for dependent in dependents {
            try store.update(dependent.node.resource, namespace: dependent.node.namespace, name: dependent.node.name) { object in
                guard object.string(at: ["metadata", "uid"]) == dependent.node.uid,
                      let references = object[path: ["metadata", "ownerReferences"]]?.arrayValue else { return nil }
                let kept = references.filter { $0.string(at: ["uid"]) != owner.uid }
                guard kept.count != references.count else { return nil }
                var next = object
                next.set(["metadata", "ownerReferences"], kept.isEmpty ? nil : .array(kept))
                return next
            }
        }
        try finish(owner, removing: Self.orphanFinalizer)
    }

    /// Foreground propagation: the dependents are deleted; the owner goes when none that
    /// blocks its deletion is left.
    private func deleteInForeground(_ owner: Node, dependents: [(node: Node, blocking: Bool)], all: [String: [(node: Node, blocking: Bool)]]) throws {
        for dependent in dependents where !dependent.node.deleting && dependent.node.uid != owner.uid
            && dependent.node.resource != .namespaces && dependent.node.resource != .nodes {
            try delete(dependent.node, foreground: all[dependent.node.uid] != nil)
        }
        // What blocks: not the owner itself, not a Namespace or Node (never deleted here), not
        // a dependent that in turn waits for this owner (a cycle would never end).
        let blocking = dependents.filter { dependent in
            dependent.blocking && dependent.node.uid != owner.uid && dependent.node.resource != .namespaces && dependent.node.resource != .nodes
                && !(all[dependent.node.uid] ?? []).contains { $0.node.uid == owner.uid }
        }
        guard blocking.isEmpty else { return }
        try finish(owner, removing: Self.foregroundFinalizer)
    }

    /// Deletes an object: a pod as a client's delete does (its node stops it), an owner of
    /// other objects in the foreground when asked, anything else at once.
    private func delete(_ node: Node, foreground: Bool) throws {
        if node.resource == .pods {
            try writes.deletePod(namespace: node.namespace, name: node.name, uid: node.uid)
            return
        }
        if foreground {
            try store.update(node.resource, namespace: node.namespace, name: node.name) { object in
                guard object.string(at: ["metadata", "uid"]) == node.uid else { return nil }
                var next = object
                var finalizers = object[path: ["metadata", "finalizers"]]?.arrayValue ?? []
                if !finalizers.contains(.string(Self.foregroundFinalizer)) { finalizers.append(.string(Self.foregroundFinalizer)) }
                next.set(["metadata", "finalizers"], .array(finalizers))
                if object[path: ["metadata", "deletionTimestamp"]] == nil {
                    next.set(["metadata", "deletionTimestamp"], .string(Timestamp.now().description))
                    next.set(["metadata", "deletionGracePeriodSeconds"], .integer(0))
                }
                return next
            }
            return
        }
        guard let current = try store.get(node.resource, namespace: node.namespace, name: node.name),
              current.string(at: ["metadata", "uid"]) == node.uid else { return }
        if APIServer.hasFinalizers(current) {
            // Others' finalizers hold it: mark it, as a client's delete does.
            try store.update(node.resource, namespace: node.namespace, name: node.name) { object in
                guard object.string(at: ["metadata", "uid"]) == node.uid, object[path: ["metadata", "deletionTimestamp"]] == nil else { return nil }
                var next = object
                next.set(["metadata", "deletionTimestamp"], .string(Timestamp.now().description))
                next.set(["metadata", "deletionGracePeriodSeconds"], .integer(0))
                return next
            }
            return
        }
        try store.delete(node.resource, namespace: node.namespace, name: node.name, expectedUID: node.uid)
    }

    /// Removes a propagation finalizer; the object goes when no finalizer is left (a pod bound
    /// to a node goes when its node confirms, as always).
    private func finish(_ node: Node, removing finalizer: String) throws {
        let stored = try store.update(node.resource, namespace: node.namespace, name: node.name) { object in
            guard object.string(at: ["metadata", "uid"]) == node.uid, let finalizers = object[path: ["metadata", "finalizers"]]?.arrayValue else { return nil }
            let kept = finalizers.filter { $0.stringValue != finalizer }
            guard kept.count != finalizers.count else { return nil }
            var next = object
            next.set(["metadata", "finalizers"], kept.isEmpty ? nil : .array(kept))
            return next
        }
        guard stored.string(at: ["metadata", "uid"]) == node.uid, APIServer.mayRemove(stored, resource: node.resource) else { return }
        try store.delete(node.resource, namespace: node.namespace, name: node.name, expectedUID: node.uid)
        if node.resource == .nodes { NodePasswords(store: store).forget(node: node.name) }
    }
}
