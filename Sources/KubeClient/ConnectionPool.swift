import NIOCore
import Synchronization

/// The idle kept-alive connections of one client: an exchange takes one (or opens a new one)
/// and puts it back when the response allowed it. A board's heartbeat, lease, status and
/// metrics writes then cost one TLS handshake per connection instead of one per request (each
/// handshake is an ECDHE exchange and a signature on both ends). At most ``maximumIdle`` stay
/// open, each for at most ``idleLimit`` unused (below the API servers' own idle timeouts, so
/// a kept connection is rarely one the server is closing); all close when the client goes.
final class ConnectionPool: Sendable {
    static let maximumIdle = 4
    static let idleLimit = TimeAmount.seconds(50)

    private let idle = Mutex<[KeptAliveConnection]>([])

    init() {}

    deinit {
        for connection in idle.withLock({ $0 }) { connection.close() }
    }

    /// An open idle connection, newest first; nil when there is none.
    func checkOut() -> KeptAliveConnection? {
        let (connection, closed) = idle.withLock { idle -> (KeptAliveConnection?, [KeptAliveConnection]) in
            var closed: [KeptAliveConnection] = []
            while let candidate = idle.popLast() {
                if candidate.isOpen {
                    // Taken under the lock: an idle timer firing now finds it gone.
                    _ = candidate.mark()
                    return (candidate, closed)
                }
                closed.append(candidate)
            }
            return (nil, closed)
        }
        for connection in closed { connection.close() }
        return connection
    }

    /// Puts a connection whose last response allowed another exchange back; closes it when the
    /// pool is full.
    func checkIn(_ connection: KeptAliveConnection) {
        guard connection.isOpen else { return connection.close() }
        let mark: UInt64? = idle.withLock { idle in
            idle.removeAll { !$0.isOpen }
            guard idle.count < Self.maximumIdle else { return nil }
            let mark = connection.mark()
            idle.append(connection)
            return mark
        }
        guard let mark else { return connection.close() }
        connection.armIdleTimer(after: Self.idleLimit) { [weak self, weak connection] in
            guard let connection else { return }
            guard let self else { return connection.close() }
            self.expire(connection, mark: mark)
        }
    }

    /// Closes `connection` if it is still idle since `mark` (checked under the lock, so a
    /// connection taken meanwhile is left alone).
    private func expire(_ connection: KeptAliveConnection, mark: UInt64) {
        let expired = idle.withLock { idle in
            guard connection.isStill(mark), let index = idle.firstIndex(where: { $0 === connection }) else { return false }
            idle.remove(at: index)
            return true
        }
        if expired { connection.close() }
    }

    /// Closes every idle connection (after a kept one failed unanswered: the server may have
    /// restarted, and the others are then as dead).
    func closeAll() {
        for connection in idle.withLock({ idle in defer { idle = [] }; return idle }) { connection.close() }
    }

    /// Idle connections now.
    var idleCount: Int { idle.withLock { $0.count } }
}
