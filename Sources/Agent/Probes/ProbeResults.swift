import Synchronization

/// What the probes of a pod's container runs last concluded, per run and probe kind: written by
/// the ``ProbeWorker``s, read by the pod worker for the status (`started`, `ready`) and for
/// restarts, as the kubelet's probe results managers.
final class ProbeResults: Sendable {
    struct Verdict: Sendable, Hashable {
        var result: ProbeTracker.Result
        /// The last failed try's message (what the restart names).
        var message: String?
    }

    private struct Key: Hashable {
        var containerID: String
        var kind: ProbeTracker.Kind
    }

    private struct State {
        var verdicts: [Key: Verdict] = [:]
        /// Runs being probed: a verdict about any other run (a try that ended just after its
        /// run was stopped) is dropped.
        var probed: Set<String> = []
    }

    private let state = Mutex(State())

    /// The verdict so far; nil until the first one (a probe that has not concluded).
    func verdict(_ kind: ProbeTracker.Kind, of containerID: String) -> Verdict? {
        state.withLock { $0.verdicts[Key(containerID: containerID, kind: kind)] }
    }

    /// Accepts verdicts about a run from now on.
    func begin(containerID: String) {
        _ = state.withLock { $0.probed.insert(containerID) }
    }

    /// Records a verdict, unless the run is no longer probed.
    func set(_ verdict: Verdict, for kind: ProbeTracker.Kind, of containerID: String) {
        state.withLock { state in
            guard state.probed.contains(containerID) else { return }
            state.verdicts[Key(containerID: containerID, kind: kind)] = verdict
        }
    }

    /// Forgets a run that ended, and refuses later verdicts about it.
    func remove(containerID: String) {
        state.withLock { state in
            state.probed.remove(containerID)
            state.verdicts = state.verdicts.filter { $0.key.containerID != containerID }
        }
    }
}
