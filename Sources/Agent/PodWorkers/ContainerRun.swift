import KubeModel

/// What a pod worker knows about one container of its pod: the current run in the runtime,
/// its state as reported, restart and pull back-offs, and what hooks and exec probes need to
/// reach it (the probes' verdicts are in the worker's ``ProbeManager``).
struct ContainerRun: Sendable {
    typealias State = PodStatusBuilder.Observation.State

    /// The runtime's container ID of the current (or last) run.
    var id: String?
    /// Runs that ended and were replaced (the API's restartCount).
    var restartCount: Int32 = 0
    /// Counts taken from outside (the API's status, log file names) are capped here.
    static let maximumRestartCount: Int32 = 1_000_000
    /// Whether the current ID is a run that was started (restartCount counts from the second one).
    var hasRun = false
    var imageID = ""
    var state: State = .waiting(reason: "ContainerCreating", message: nil)
    var lastTermination: State?
    /// The container ID of the run `lastTermination` describes.
    var lastID: String?
    var backoff = RestartBackoff()
    var pullBackoff = RestartBackoff()
    var pullFailures = 0
    /// The current crash-loop back-off has been announced as an event.
    var backoffReported = false
    /// No new try before this (seconds), after a configuration error.
    var retryAt: Int64 = 0
    /// When the current run started (seconds), for the probes' initial delays.
    /// Seconds since boot (``PodClock``) when this run started.
    var startedAt: Int64 = 0
    var hook: ContainerStopper.HookContext?
    var stopSignal: String?

    var isRunning: Bool {
        if case .running = state { return true }
        return false
    }

    /// The exit code of a finished run (nil while running or waiting).
    var exitCode: Int32? {
        if case .terminated(let code, _, _, _, _, _, _) = state { return code }
        return nil
    }
}
