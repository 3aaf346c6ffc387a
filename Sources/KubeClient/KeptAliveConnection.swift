import HTTPClientCore
import NIOCore
import NIOHTTP1
import Synchronization

/// One HTTP/1.1 connection kept open between exchanges (keep-alive), as client-go keeps its
/// connection to the API server: a task owns the channel and runs the exchanges handed to it,
/// one after the other. It ends when the connection closes (the server's idle timeout, a
/// response without keep-alive, an error) or when it is let go (``close()``); an exchange handed
/// to a closed connection fails before anything was written, so the caller may try it on another.
final class KeptAliveConnection: Sendable {
    /// A request to send and where its answer goes.
    struct Exchange: Sendable {
        let parts: [HTTPClientRequestPart]
        let progress: ExchangeProgress
        let reply: CheckedContinuation<Reply, any Error>
    }

    /// A whole response, and whether the connection may carry another exchange.
    struct Reply: Sendable {
        var status: Int
        var body: [UInt8]
        var reusable: Bool
    }

    /// The connection ended before the server answered.
    struct Unanswered: Error, CustomStringConvertible {
        var description: String
    }

    /// The most body bytes kept of one response: a server (or, for iotkube-server's own
    /// requests, an agent) sending without end fails the exchange instead of filling memory.
    static let maximumResponseBytes = 64 << 20

    private let exchanges: AsyncStream<Exchange>.Continuation
    private let channel: any Channel
    /// Bumped whenever the connection is taken or put back, so an idle timer armed before does
    /// nothing; and that timer, cancelled when the connection closes.
    private let idle = Mutex<(generation: UInt64, timer: Scheduled<Void>?)>((0, nil))

    private init(exchanges: AsyncStream<Exchange>.Continuation, channel: any Channel) {
        self.exchanges = exchanges
        self.channel = channel
    }

    /// Starts serving exchanges on `connection` (the new connection's first exchange may follow
    /// at once). The serving task ends with the connection.
    static func start(_ connection: HTTPClientConnection.Channel) -> KeptAliveConnection {
        let (stream, continuation) = AsyncStream.makeStream(of: Exchange.self)
        let kept = KeptAliveConnection(exchanges: continuation, channel: connection.channel)
        // A connection the server closes while idle ends its task (no exchange is waiting).
        connection.channel.closeFuture.whenComplete { _ in continuation.finish() }
        // Bounded by the connection's life: the server's idle timeout, the pool's idle timer,
        // or the pool letting it go end it.
        Task { await serve(connection, stream) }
        return kept
    }

    /// Whether the connection is still open.
    var isOpen: Bool { channel.isActive }

    /// Sends one request and waits for the whole response. A cancelled caller closes the
    /// connection (the exchange then fails at once instead of waiting for the server).
    func exchange(_ parts: [HTTPClientRequestPart], progress: ExchangeProgress) async throws -> Reply {
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { reply in
                if case .terminated = exchanges.yield(Exchange(parts: parts, progress: progress, reply: reply)) {
                    reply.resume(throwing: Unanswered(description: "the kept-alive connection had closed"))
                }
            }
        } onCancel: {
            close()
        }
    }

    /// Closes the connection (an exchange under way fails).
    func close() {
        exchanges.finish()
        idle.withLock { $0.timer?.cancel(); $0.timer = nil }
        channel.close(promise: nil)
    }

    /// A new mark (taken out of or put back into the pool): idle timers armed before it do
    /// nothing. Called under the pool's lock.
    func mark() -> UInt64 {
        idle.withLock { idle in
            idle.generation &+= 1
            idle.timer?.cancel()
            idle.timer = nil
            return idle.generation
        }
    }

    /// Whether nothing happened to the connection since `mark`. Called under the pool's lock.
    func isStill(_ mark: UInt64) -> Bool { idle.withLock { $0.generation == mark } }

    /// Runs `expire` after `limit` (it checks under the pool's lock that the connection is
    /// still idle since the mark).
    func armIdleTimer(after limit: TimeAmount, _ expire: @escaping @Sendable () -> Void) {
        let timer = channel.eventLoop.scheduleTask(in: limit, expire)
        idle.withLock { $0.timer = timer }
    }

    /// Runs the exchanges in order. After a failure every further exchange fails as
    /// unanswered until the stream ends (each caller's continuation is resumed exactly once).
    private static func serve(_ connection: HTTPClientConnection.Channel, _ exchanges: AsyncStream<Exchange>) async {
        var broken: String?
        do {
            try await connection.executeThenClose { inbound, outbound in
                var responses = inbound.makeAsyncIterator()
                for await exchange in exchanges {
                    if let broken {
                        exchange.reply.resume(throwing: Unanswered(description: broken))
                        continue
                    }
                    do {
                        let reply = try await run(exchange, responses: &responses, outbound: outbound)
                        exchange.reply.resume(returning: reply)
                        if !reply.reusable {
                            broken = "the server closed the connection after its response"
                            connection.channel.close(promise: nil)
                        }
                    } catch {
                        exchange.reply.resume(throwing: error)
                        broken = "the connection failed: \(error)"
                        connection.channel.close(promise: nil)
                    }
                }
            }
        } catch {
            // executeThenClose's own close failing: the connection is gone either way.
        }
        // Exchanges that arrived after the closure ended (none normally: the stream finished).
        for await exchange in exchanges { exchange.reply.resume(throwing: Unanswered(description: broken ?? "the connection closed")) }
    }

    /// Writes one request and reads its response. A failed write (a failed TLS handshake, a
    /// reset) throws the reason the inbound side ends with, not "I/O on closed channel".
    private static func run(
        _ exchange: Exchange, responses: inout NIOAsyncChannelInboundStream<HTTPClientResponsePart>.AsyncIterator,
        outbound: NIOAsyncChannelOutboundWriter<HTTPClientRequestPart>
    ) async throws -> Reply {
        do {
            for part in exchange.parts { try await outbound.write(part) }
        } catch {
            while try await responses.next() != nil {}
            throw Unanswered(description: "\(error)")
        }
        // The whole request is on its way: the server may act on it from now on.
        exchange.progress.setWritten()
        var reply = Reply(status: 0, body: [], reusable: false)
        var answered = false
        while let part = try await responses.next() {
            switch part {
            case .head(let head):
                // Interim answers (100 Continue) are not the response; NIO passes on only 101,
                // which ends HTTP on the connection (it is then not kept).
                if head.status.code >= 100 && head.status.code < 200 && head.status.code != 101 { continue }
                answered = true
                exchange.progress.setAnswered()
                reply.status = Int(head.status.code)
                reply.reusable = head.isKeepAlive && head.status.code >= 200
            case .body(var buffer):
                guard reply.body.count + buffer.readableBytes <= Self.maximumResponseBytes else {
                    throw KubeClientError.protocolViolation("a response body over \(Self.maximumResponseBytes >> 20) MiB")
                }
                reply.body.append(contentsOf: buffer.readBytes(length: buffer.readableBytes) ?? [])
            case .end:
                return reply
            }
        }
        if answered { throw KubeClientError.transport("the connection closed before the response ended") }
        throw Unanswered(description: "the connection closed before the server answered")
    }
}

/// How far one exchange got: whether the whole request was written (the server may have acted
/// on it) and whether a response arrived.
final class ExchangeProgress: Sendable {
    private let state = Atomic<UInt8>(0)
    func setWritten() { state.bitwiseOr(1, ordering: .relaxed) }
    func setAnswered() { state.bitwiseOr(3, ordering: .relaxed) }
    var written: Bool { state.load(ordering: .relaxed) & 1 != 0 }
    var answered: Bool { state.load(ordering: .relaxed) & 2 != 0 }
}
