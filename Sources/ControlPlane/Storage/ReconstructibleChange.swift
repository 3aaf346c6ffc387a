import KubeModel

/// Which updates the store may keep in memory and write later: those that change nothing a
/// restart needs. A Lease renewal (only `spec.renewTime` moves) and a Node status heartbeat (only
/// the conditions' `lastHeartbeatTime` moves) are reconstructible: the agents send them again
/// within seconds, and the node lifecycle controller judges a node by when it saw them change,
/// never by the stored time. Written through every time, 500 boards renewing every 10 s wear an
/// SD card out in months; kept in memory they are written in one batch every ten minutes.
enum ReconstructibleChange {
    static func isReconstructible(_ resource: ResourceType, namespace: String, from old: JSONValue, to new: JSONValue) -> Bool {
        switch resource.storageKey {
        case ResourceType.leases.storageKey:
            // Node leases only: a leader-election Lease elsewhere may be judged by its stored
            // renewTime, and losing a renewal could hand the leadership over.
            return namespace == "kube-node-lease" && strippingLeaseRenewal(old) == strippingLeaseRenewal(new)
        case ResourceType.nodes.storageKey:
            return strippingHeartbeats(old) == strippingHeartbeats(new)
        default:
            return false
        }
    }

    private static func strippingLeaseRenewal(_ lease: JSONValue) -> JSONValue {
        var copy = lease
        copy.set(["metadata", "resourceVersion"], nil)
        // The server counts spec changes in generation; a renewal's count is not worth a write.
        copy.set(["metadata", "generation"], nil)
        copy.set(["spec", "renewTime"], nil)
        return copy
    }

    private static func strippingHeartbeats(_ node: JSONValue) -> JSONValue {
        var copy = node
        copy.set(["metadata", "resourceVersion"], nil)
        guard case .array(var conditions)? = copy[path: ["status", "conditions"]] else { return copy }
        for index in conditions.indices {
            conditions[index].set(["lastHeartbeatTime"], nil)
        }
        copy.set(["status", "conditions"], .array(conditions))
        return copy
    }
}
