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
                if candidate.isOpen { return (candidate, closed) }
                closed.append(candidate)
            }
            return (nil, closed)
        }
        for connection in closed { connection.close() }
        connection?.markInUse()
        return connection
    }

    /// Puts a connection whose last response allowed another exchange back; closes it when the
    /// pool is full.
    func checkIn(_ connection: KeptAliveConnection) {
        guard connection.isOpen else { return connection.close() }
        let mark: UInt64? = idle.withLock { idle in
            idle.removeAll { !$0.isOpen }
            guard idle.count < Self.maximumIdle else { return nil }
            // Marked before another exchange can take it (which marks it in use).
            let mark = connection.markIdle()
            idle.append(connection)
            return mark
        }
        if let mark { connection.closeIfStillIdle(mark, after: Self.idleLimit) } else { connection.close() }
    }

    /// Closes every idle connection (after one failed unanswered: the server may have restarted,
    /// and the others are then as dead).
    func closeAll() {
        for connection in idle.withLock({ idle in defer { idle = [] }; return idle }) { connection.close() }
    }

    /// Idle connections now.
    var idleCount: Int { idle.withLock { $0.count } }
}
