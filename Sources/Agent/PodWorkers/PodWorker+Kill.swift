import KubeModel

// Stopping a running pod for the node: an eviction (node pressure) or a graceful node shutdown.
extension PodWorker {
    /// Evicts the pod (node pressure): it is stopped within `gracePeriod`, reported Failed with
    /// reason Evicted and `message`, and its volumes are released. The next sync does it.
    public func evict(message: String, gracePeriod: Int64) {
        kill(reason: "Evicted", message: message, gracePeriod: gracePeriod)
    }

    /// The kubelet's message for pods a node shutdown stops.
    public static let nodeShutdownMessage = "Pod was terminated in response to imminent node shutdown."

    /// Stops the pod for a node shutdown within `gracePeriod` (or its own grace period, when
    /// shorter), reported Failed with reason Terminated, as the kubelet does.
    public func terminateForNodeShutdown(gracePeriod: Int64) {
        kill(reason: "Terminated", message: Self.nodeShutdownMessage, gracePeriod: gracePeriod)
    }

    /// A node shutdown: a running pod is stopped within `gracePeriod` and ends Terminated (true);
    /// one being deleted or removed gets at most `gracePeriod` more (a stop already under way
    /// keeps its time).
    public func shutDownForNode(gracePeriod: Int64) -> Bool {
        switch state {
        case .syncing:
            terminateForNodeShutdown(gracePeriod: gracePeriod)
            return true
        case .terminating:
            beginTerminating(deleteFromAPI: false, gracePeriod: gracePeriod)
            wake.signal()
            return false
        case .rejected, .evicting, .finished, .terminated:
            return false
        }
    }

    /// Nothing of the pod runs or is being stopped any more (a pod that ended may still be
    /// stopping its other containers: its deadline, a sidecar).
    public var isStopped: Bool {
        switch state {
        case .syncing, .evicting, .terminating: false
        case .finished: !killInProgress && !runs.values.contains(where: \.isRunning)
        case .rejected, .terminated: true
        }
    }

    /// The pod ended through a node shutdown (and has not been deleted since).
    public var endedByNodeShutdown: Bool {
        guard case .finished(let outcome) = state else { return false }
        return outcome.reason == "Terminated" && outcome.message == Self.nodeShutdownMessage
    }

    /// A running pod is stopped by the next sync and ends Failed with `reason` and `message`.
    func kill(reason: String, message: String, gracePeriod: Int64) {
        guard state == .syncing else { return }
        state = .evicting(reason: reason, message: message, gracePeriod: max(0, min(gracePeriod, self.gracePeriod)))
        killInProgress = true
        syncInFlight?.cancel()
        wake.signal()
    }

    /// Running (not yet Succeeded, Failed, evicted or terminating).
    public var isActive: Bool { state == .syncing }

    /// The eviction or shutdown asked for has been carried out: the containers stopped, the
    /// final status reported and an evicted pod's volumes released (or the pod ended meanwhile).
    public var isKillDone: Bool {
        switch state {
        case .syncing, .evicting: false
        case .finished: !killInProgress
        case .rejected, .terminating, .terminated: true
        }
    }
}
