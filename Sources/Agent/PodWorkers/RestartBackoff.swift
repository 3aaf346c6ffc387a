/// The kubelet's crash-loop back-off for one container: the first restart waits 10 s, each next
/// one twice as long up to 5 minutes, and the delay starts over once the container has run for
/// 10 minutes without exiting.
public struct RestartBackoff: Sendable, Hashable {
    public static let initialDelay: Int64 = 10
    public static let maximumDelay: Int64 = 300
    public static let resetAfter: Int64 = 600

    /// The delay the next restart waits (0 before the first exit).
    public private(set) var delay: Int64 = 0
    /// When the container may start again (seconds, the caller's clock).
    public private(set) var notBefore: Int64 = 0

    public init() {}

    /// Records an exit at `exited` of a run that started at `started`; returns the delay.
    @discardableResult
    public mutating func recordExit(started: Int64, exited: Int64) -> Int64 {
        if exited - started >= Self.resetAfter || delay == 0 {
            delay = Self.initialDelay
        } else {
            delay = min(Self.maximumDelay, delay * 2)
        }
        notBefore = exited + delay
        return delay
    }

    /// Whether a restart at `now` must still wait (the container is then in CrashLoopBackOff).
    public func isBackingOff(at now: Int64) -> Bool { now < notBefore }

    /// The waiting reason's message, as the kubelet words it.
    public func message(container: String, pod: String) -> String {
        "back-off \(Self.duration(delay)) restarting failed container=\(container) pod=\(pod)"
    }

    static func duration(_ seconds: Int64) -> String {
        seconds % 60 == 0 ? "\(seconds / 60)m0s" : seconds >= 60 ? "\(seconds / 60)m\(seconds % 60)s" : "\(seconds)s"
    }
}
