import KubeModel
import Logging

/// Runs one probe of one container run (the kubelet's prober worker): after the initial delay,
/// one try every period, each bounded by the probe's timeout; the verdict goes to the pod's
/// ``ProbeResults``. Liveness and readiness wait until a startup probe has passed. The startup
/// probe ends with its success; a failed liveness or startup verdict ends the worker too (the pod
/// worker restarts the container, and the new run gets new workers).
struct ProbeWorker: Sendable {
    /// One try of the probe against the run, bounded by the timeout in seconds.
    typealias Perform = @Sendable (_ probe: Probe, _ target: ProbeTarget, _ timeoutSeconds: Int64) async -> ProbeActions.Outcome

    let kind: ProbeTracker.Kind
    let probe: Probe
    let target: ProbeTarget
    let results: ProbeResults
    let perform: Perform
    /// Called with the message of every failed try (the `Unhealthy` event).
    let failed: @Sendable (_ message: String) async -> Void
    /// Called when a verdict the pod worker acts on changed (status, restart).
    let changed: @Sendable () -> Void
    let logger: Logger
    /// Seconds since boot (``PodClock``), the clock of `target.startedAt`.
    var now: @Sendable () -> Int64 = { PodClock.bootSeconds() }

    func run() async {
        var tracker = ProbeTracker(probe, kind: kind)
        // Counted from the run's start: a run adopted after an agent restart has waited already.
        let delay = min(tracker.initialDelay, target.startedAt + tracker.initialDelay - now())
        if delay > 0 { try? await Task.sleep(for: .seconds(delay)) }
        while !Task.isCancelled {
            if kind != .startup, target.container.startupProbe != nil,
               results.verdict(.startup, of: target.containerID)?.result != .success {
                try? await Task.sleep(for: .seconds(1))
                continue
            }
            let outcome = await perform(probe, target, tracker.timeout)
            // Stopped in the middle of the try (the run ended, the pod is going): no verdict.
            if Task.isCancelled { return }
            var failure: String?
            if case .failure(let message) = outcome {
                failure = message
                await failed("\(kind.title) probe failed: \(message)")
            }
            if tracker.record(success: failure == nil, message: failure) {
                results.set(.init(result: tracker.result, message: tracker.lastFailure), for: kind, of: target.containerID)
                if kind == .readiness {
                    let verdict = tracker.result == .success ? "ready" : "not ready (\(failure ?? ""))"
                    logger.info("container \(target.container.name) readiness: \(verdict)")
                }
                // A passing liveness probe changes nothing the pod worker shows or does.
                if kind != .liveness || tracker.result == .failure { changed() }
            }
            if kind == .startup, tracker.result == .success { return }
            if kind != .readiness, tracker.result == .failure { return }
            try? await Task.sleep(for: .seconds(tracker.period))
        }
    }
}

extension ProbeTracker.Kind {
    /// "Startup", "Liveness", "Readiness", as the kubelet's event messages begin.
    var title: String { rawValue.prefix(1).uppercased() + rawValue.dropFirst() }
}
