import HTTPClientCore
import NIOCore
import NIOHTTP1
import Synchronization

/// One HTTP/1.1 connection kept open between exchanges (keep-alive), as client-go keeps its
/// connection to the API server: a task owns the channel and runs the exchanges handed to it,
/// one after the other. It ends when the connection closes (the server's idle timeout, a
/// response without keep-alive, an error) or when it is let go (``close()``); an exchange handed
/// to a closed connection fails as unanswered, so the caller may try it on another.
final class KeptAliveConnection: Sendable {
    /// A request to send and where its answer goes.
    struct Exchange: Sendable {
        let parts: [HTTPClientRequestPart]
        let answered: AnsweredFlag
        let reply: CheckedContinuation<Reply, any Error>
    }

    /// A whole response, and whether the connection may carry another exchange.
    struct Reply: Sendable {
        var status: Int
        var body: [UInt8]
        var reusable: Bool
    }

    /// The connection ended before the server answered (the request was not processed).
    struct Unanswered: Error, CustomStringConvertible {
        var description: String
    }

    private let exchanges: AsyncStream<Exchange>.Continuation
    private let channel: any Channel
    /// Bumped at each check-out, so an idle timer armed before it does nothing.
    private let idleGeneration = Atomic<UInt64>(0)

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

    /// Sends one request and waits for the whole response.
    func exchange(_ parts: [HTTPClientRequestPart], answered: AnsweredFlag) async throws -> Reply {
        try await withCheckedThrowingContinuation { reply in
            if case .terminated = exchanges.yield(Exchange(parts: parts, answered: answered, reply: reply)) {
                reply.resume(throwing: Unanswered(description: "the kept-alive connection had closed"))
            }
        }
    }

    /// Closes the connection (an exchange under way fails).
    func close() {
        exchanges.finish()
        channel.close(promise: nil)
    }

    /// Marks the connection idle as of now; the mark is what ``closeIfStillIdle(_:after:)``
    /// checks. Call before the connection is visible to others in the pool.
    func markIdle() -> UInt64 {
        idleGeneration.wrappingAdd(1, ordering: .relaxed).newValue
    }

    /// Closes the connection after `limit` unless it was taken (or marked idle again) since `mark`.
    func closeIfStillIdle(_ mark: UInt64, after limit: TimeAmount) {
        channel.eventLoop.scheduleTask(in: limit) { [weak self] in
            guard let self, self.idleGeneration.load(ordering: .relaxed) == mark else { return }
            self.close()
        }
    }

    /// Taken from the pool: an idle timer armed before does nothing.
    func markInUse() {
        idleGeneration.wrappingAdd(1, ordering: .relaxed)
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
        var reply = Reply(status: 0, body: [], reusable: false)
        var answered = false
        while let part = try await responses.next() {
            switch part {
            case .head(let head):
                // An interim answer (100 Continue) is not the response.
                if head.status.code >= 100 && head.status.code < 200 { continue }
                answered = true
                exchange.answered.set()
                reply.status = Int(head.status.code)
                reply.reusable = head.isKeepAlive
            case .body(var buffer):
                reply.body.append(contentsOf: buffer.readBytes(length: buffer.readableBytes) ?? [])
            case .end:
                return reply
            }
        }
        if answered { throw KubeClientError.transport("the connection closed before the response ended") }
        throw Unanswered(description: "the connection closed before the server answered")
    }
}
