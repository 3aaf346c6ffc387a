import KubeModel

/// Where a ``PodWorker`` is in its pod's life: the kubelet's SyncPod, TerminatingPod and
/// TerminatedPod, with the steps between. Moves only forward: rejected, or syncing (then maybe
/// evicting, then finished); then terminating; then terminated.
enum PodWorkerState: Sendable, Equatable {
    /// Admission refused the pod: reported Failed with the reason, never run.
    case rejected(PodOutcome)
    /// Running the pod: setting it up, starting, restarting and probing its containers.
    case syncing
    /// The eviction manager (`reason` Evicted) or a node shutdown (`Terminated`) asked for the
    /// pod: the next sync stops it within `gracePeriod` and reports it Failed with `reason` and
    /// `message`; an evicted pod's volumes are released.
    case evicting(reason: String, message: String, gracePeriod: Int64)
    /// Succeeded or Failed (completed, past its deadline, evicted): nothing is started any more;
    /// the pod keeps its status (not its address) until it is deleted.
    case finished(PodOutcome)
    /// Deleted in the API (`deleteFromAPI`: the agent then removes the object) or no longer
    /// wanted by any source: its containers are stopped by `deadline` (seconds since boot, ``PodClock``).
    /// `outcome`: how the pod had ended before, if it had.
    case terminating(deadline: Int64, deleteFromAPI: Bool, outcome: PodOutcome?)
    /// Stopped and cleaned up; the worker has ended.
    case terminated

    /// Not yet terminating: the pod is still wanted here.
    var isWanted: Bool {
        switch self {
        case .rejected, .syncing, .evicting, .finished: true
        case .terminating, .terminated: false
        }
    }

    /// How the pod ended, once it has.
    var outcome: PodOutcome? {
        switch self {
        case .rejected(let outcome), .finished(let outcome): outcome
        case .terminating(_, _, let outcome): outcome
        case .syncing, .evicting, .terminated: nil
        }
    }
}

/// How a pod ended on this node: its phase with the reason and message its status carries
/// (`Evicted`, `DeadlineExceeded`, an admission refusal).
struct PodOutcome: Sendable, Equatable {
    var phase: PodPhase
    var reason: String?
    var message: String?
    /// An earlier agent wrote this status: it is not written again.
    var reportedBefore = false
}
