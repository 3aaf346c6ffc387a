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

    private let verdicts = Mutex<[Key: Verdict]>([:])

    /// The verdict so far; nil until the first one (a probe that has not concluded).
    func verdict(_ kind: ProbeTracker.Kind, of containerID: String) -> Verdict? {
        verdicts.withLock { $0[Key(containerID: containerID, kind: kind)] }
    }

    func set(_ verdict: Verdict, for kind: ProbeTracker.Kind, of containerID: String) {
        verdicts.withLock { $0[Key(containerID: containerID, kind: kind)] = verdict }
    }

    /// Forgets a run that ended.
    func remove(containerID: String) {
        verdicts.withLock { verdicts in verdicts = verdicts.filter { $0.key.containerID != containerID } }
    }
}
