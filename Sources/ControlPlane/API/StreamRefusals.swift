import Synchronization

/// The agent's recent refusals of stream upgrades, per client and pod, for a few seconds.
/// kubectl retries a refused WebSocket upgrade over SPDY, which this server does not serve;
/// the retry is then answered with the agent's reason (`container "x" is not running`) rather
/// than with "SPDY is not served". Bounded: old and excess entries are dropped.
final class StreamRefusals: Sendable {
    struct Refusal: Sendable {
        var status: Int
        var message: String
        var expires: ContinuousClock.Instant
    }

    static let lifetime = Duration.seconds(10)
    static let capacity = 1024

    private let refusals = Mutex<[String: Refusal]>([:])

    static func key(user: String, namespace: String, pod: String) -> String { "\(user)\u{0}\(namespace)\u{0}\(pod)" }

    func record(_ key: String, status: Int, message: String) {
        let now = ContinuousClock.now
        refusals.withLock { refusals in
            if refusals.count >= Self.capacity {
                refusals = refusals.filter { $0.value.expires > now }
                if refusals.count >= Self.capacity { refusals.removeAll() }
            }
            refusals[key] = Refusal(status: status, message: message, expires: now + Self.lifetime)
        }
    }

    /// The refusal recorded for `key` in the last few seconds (taken: answered once).
    func take(_ key: String) -> Refusal? {
        refusals.withLock { refusals in
            guard let refusal = refusals.removeValue(forKey: key), refusal.expires > ContinuousClock.now else { return nil }
            return refusal
        }
    }
}
