/// Capped exponential backoff with jitter, for retries against a server that may be gone.
public struct Backoff: Sendable {
    public var initial: Duration
    public var maximum: Duration
    private(set) var attempt = 0

    public init(initial: Duration = .milliseconds(500), maximum: Duration = .seconds(30)) {
        self.initial = initial
        self.maximum = maximum
    }

    /// The next delay: initial × 2^attempt, capped, with ±20 % jitter.
    public mutating func next() -> Duration {
        let base = min(initial * (1 << min(attempt, 20)), maximum)
        attempt += 1
        return base * Double.random(in: 0.8...1.2)
    }

    public mutating func reset() { attempt = 0 }
}
