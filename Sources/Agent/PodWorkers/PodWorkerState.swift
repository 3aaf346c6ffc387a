/// Where a ``PodWorker`` is in its pod's life: the kubelet's SyncPod, TerminatingPod and
/// TerminatedPod, plus a pod admission refused. Moves only forward: rejected or syncing, then
/// terminating, then terminated.
enum PodWorkerState: Sendable, Equatable {
    /// Admission refused the pod: reported Failed with the reason, never run.
    case rejected
    /// Running the pod: setting it up, starting, restarting and probing its containers.
    case syncing
    /// Deleted in the API (`deleteFromAPI`: the agent then removes the object) or no longer
    /// wanted by any source: its containers are stopped by `deadline` (seconds since the epoch).
    case terminating(deadline: Int64, deleteFromAPI: Bool)
    /// Stopped and cleaned up; the worker has ended.
    case terminated

    /// Rejected or syncing: the pod is still wanted here.
    var isWanted: Bool {
        switch self {
        case .rejected, .syncing: true
        case .terminating, .terminated: false
        }
    }
}
