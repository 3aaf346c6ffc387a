import KubeModel

/// The verdict of one probe of one container as the kubelet keeps it: the result flips after
/// `successThreshold` successes or `failureThreshold` failures in a row. The timing
/// (`initialDelaySeconds`, `periodSeconds`, `timeoutSeconds`) is read here, bounded, and kept by
/// the ``ProbeWorker`` that runs the probe.
public struct ProbeTracker: Sendable, Hashable {
    public enum Kind: String, Sendable { case startup, liveness, readiness }
    public enum Result: Sendable, Hashable { case unknown, success, failure }

    public let kind: Kind
    public let initialDelay: Int64
    public let period: Int64
    public let timeout: Int64
    public let successThreshold: Int
    public let failureThreshold: Int

    /// The current verdict: readiness starts as failure (not ready), the others as unknown
    /// (startup unknown = not yet started; liveness unknown = alive).
    public private(set) var result: Result
    private var successes = 0
    private var failures = 0
    /// The message of the last failed try (for the event and the container status).
    public private(set) var lastFailure: String?

    /// The API's defaults: period 10 s, timeout 1 s, thresholds 1 and 3 (success is always 1
    /// for liveness and startup).
    public init(_ probe: Probe, kind: Kind) {
        self.kind = kind
        initialDelay = SpecSeconds.bounded(Int64(probe.initialDelaySeconds ?? 0))
        period = max(1, SpecSeconds.bounded(Int64(probe.periodSeconds ?? 10)))
        timeout = max(1, SpecSeconds.bounded(Int64(probe.timeoutSeconds ?? 1)))
        successThreshold = kind == .readiness ? Int(max(1, probe.successThreshold ?? 1)) : 1
        failureThreshold = Int(max(1, probe.failureThreshold ?? 3))
        result = kind == .readiness ? .failure : .unknown
    }

    /// Records a try's outcome; returns true when the verdict changed.
    @discardableResult
    public mutating func record(success: Bool, message: String? = nil) -> Bool {
        let before = result
        if success {
            successes += 1
            failures = 0
            if successes >= successThreshold { result = .success }
        } else {
            failures += 1
            successes = 0
            lastFailure = message
            if failures >= failureThreshold { result = .failure }
        }
        return result != before
    }
}
