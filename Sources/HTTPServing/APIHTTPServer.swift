import Synchronization
#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import KubeModel
import NodeCrypto

/// The HTTPS listener: TLS (client certificates verified against the cluster CA when
/// presented), HTTP/1.1 keep-alive, capped request bodies, streamed responses.
public final class APIHTTPServer: Sendable {
    /// Kubernetes caps request bodies at 3 MiB; so do we.
    public static let maximumBodySize = 3 << 20
    private let handler: any HTTPRequestHandler
    private let tls: NIOSSLContext?
    private let logger: Logger
    /// A connection's TLS handshake and each request must arrive within this time
    /// (slow-loris clients are dropped).
    private let requestTimeout: TimeAmount
    /// A keep-alive connection with no request in flight is closed after this time.
    private let idleTimeout: TimeAmount
    /// A response write that the client does not take within this time closes the connection
    /// (a watcher that stops reading would otherwise hold its connection and slot forever).
    private let writeTimeout: TimeAmount
    /// Connections per address and watches per client.
    private let limits: ClientLimits

    /// A server with the default ``ClientLimits``.
    public convenience init(handler: any HTTPRequestHandler, tls: NIOSSLContext?, logger: Logger, requestTimeoutSeconds: Int64 = 30, idleTimeoutSeconds: Int64 = 120) {
        self.init(handler: handler, tls: tls, logger: logger, requestTimeoutSeconds: requestTimeoutSeconds, idleTimeoutSeconds: idleTimeoutSeconds, limits: ClientLimits())
    }

    public init(
        handler: any HTTPRequestHandler, tls: NIOSSLContext?, logger: Logger, requestTimeoutSeconds: Int64, idleTimeoutSeconds: Int64 = 120,
        writeTimeoutSeconds: Int64 = 60, limits: ClientLimits
    ) {
        self.handler = handler
        self.limits = limits
        self.tls = tls
        self.logger = logger
        requestTimeout = .seconds(requestTimeoutSeconds)
        idleTimeout = .seconds(idleTimeoutSeconds)
        writeTimeout = .seconds(writeTimeoutSeconds)
    }

    /// Binds and serves until cancelled; calls `onListening` with the bound port once listening.
    /// A port in use is tried again each second for `bindRetrySeconds` (the process before this
    /// one may still be stopping, as after a quick restart).
    public func run(host: String, port: Int, bindRetrySeconds: Int = 0, onListening: @Sendable (Int) -> Void = { _ in }) async throws {
        var waited = 0
        var bound: NIOAsyncChannel<NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>, Never>?
        while bound == nil {
            do {
                bound = try await bind(host: host, port: port)
            } catch let error as IOError where error.errnoCode == EADDRINUSE && waited < bindRetrySeconds {
                if waited == 0 {
                    logger.warning("\(host):\(port) is in use (a process before this one still stopping?): trying again for up to \(bindRetrySeconds) s")
                }
                try await Task.sleep(for: .seconds(1))
                waited += 1
            }
        }
        guard let server = bound else { return }
        if waited > 0 { logger.info("\(host):\(port) bound after \(waited) s") }
        onListening(server.channel.localAddress?.port ?? port)
        try await withTaskCancellationHandler {
            try await server.executeThenClose { connections in
                try await withThrowingDiscardingTaskGroup { group in
                    for try await connection in connections {
                        group.addTask { await self.serve(connection) }
                    }
                }
            }
        } onCancel: {
            server.channel.close(promise: nil)
        }
    }

    private func bind(host: String, port: Int) async throws -> NIOAsyncChannel<NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>, Never> {
        let tls = self.tls
        let requestTimeout = self.requestTimeout
        let idleTimeout = self.idleTimeout
        return try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .bind(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls))
                    }
                    // Passes bytes through until a response upgrades the connection.
                    try channel.pipeline.syncOperations.addHandler(ByteStreamBridge(raw: false))
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(RequestTimeoutHandler(requestTimeout: requestTimeout, idleTimeout: idleTimeout))
                    return try NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>(wrappingChannelSynchronously: channel)
                }
            }
    }

    private func serve(_ connection: NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>) async {
        // The TLS handshake is done once the first request has arrived; look the peer up then.
        var identity: RequestIdentity?
        var identityResolved = false
        // A connection over the per-address bound gets one 429 answer, then is closed.
        let address = connection.channel.remoteAddress?.ipAddress ?? "unknown"
        let admitted = limits.openConnection(from: address)
        let slot = AddressSlot(held: admitted)
        defer { if slot.release() { limits.closeConnection(from: address) } }
        do {
            try await connection.executeThenClose { inbound, outbound in
                var head: HTTPRequestHead?
                var body: [UInt8] = []
                var tooLarge = false
                for try await part in inbound {
                    switch part {
                    case .head(let requestHead):
                        if !identityResolved {
                            identity = await Self.clientIdentity(connection.channel)
                            identityResolved = true
                        }
                        head = requestHead
                        body = []
                        tooLarge = false
                    case .body(var buffer):
                        if body.count + buffer.readableBytes > Self.maximumBodySize {
                            tooLarge = true
                        } else if let bytes = buffer.readBytes(length: buffer.readableBytes) {
                            body.append(contentsOf: bytes)
                        }
                    case .end:
                        guard let requestHead = head else { continue }
                        let response: HTTPResponse
                        var watchClient: String?
                        if tooLarge {
                            response = .json(413, Self.statusBytes(Status(code: 413, reason: "RequestEntityTooLarge",
                                message: "the request body exceeds \(Self.maximumBodySize) bytes")))
                        } else if !admitted {
                            response = ClientLimits.tooManyRequests("too many connections from \(address) (at most \(limits.connectionsPerAddress))")
                        } else {
                            let (path, items) = HTTPRequest.splitTargetItems(requestHead.uri)
                            var query: [String: String] = [:]
                            for item in items { query[item.name] = item.value }
                            var headers: [String: String] = [:]
                            // A repeated header is one comma-separated list (RFC 9110 §5.3), as
                            // kubectl's repeated X-Stream-Protocol-Version.
                            for (name, value) in requestHead.headers {
                                let key = name.lowercased()
                                headers[key] = headers[key].map { $0 + ", " + value } ?? value
                            }
                            var request = HTTPRequest(method: requestHead.method.rawValue, path: path, query: query, headers: headers, body: body, clientCertificate: identity)
                            request.queryItems = items
                            let client = ClientLimits.watchClient(request, address: address)
                            if ClientLimits.isWatch(request), !limits.startWatch(client) {
                                response = ClientLimits.tooManyRequests("too many watches for this client (at most \(limits.watchesPerClient))")
                            } else {
                                if ClientLimits.isWatch(request) { watchClient = client }
                                response = await handler.handle(request)
                            }
                        }
                        var keepAlive = requestHead.isKeepAlive && !tooLarge && admitted
                        if case .upgrade = response.body {
                            keepAlive = false
                            if let group = limits.upgradesExemptForGroup, identity?.groups.contains(group) == true, slot.release() {
                                limits.closeConnection(from: address)
                            }
                        }
                        do {
                            try await write(response, version: requestHead.version, keepAlive: keepAlive, to: outbound, on: connection.channel)
                        } catch {
                            if let watchClient { limits.endWatch(watchClient) }
                            throw error
                        }
                        if let watchClient { limits.endWatch(watchClient) }
                        if !keepAlive { return }
                        head = nil
                    }
                }
            }
        } catch {
            logger.debug("connection ended: \(error)")
        }
    }

    private func write(
        _ response: HTTPResponse, version: HTTPVersion, keepAlive: Bool, to outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>, on channel: any Channel
    ) async throws {
        let writeTimeout = self.writeTimeout
        /// Writes one part; closes the connection if the client does not take it in time.
        @Sendable func send(_ part: HTTPServerResponsePart) async throws {
            let deadline = channel.eventLoop.scheduleTask(in: writeTimeout) { channel.close(promise: nil) }
            defer { deadline.cancel() }
            try await outbound.write(part)
        }
        var headers = HTTPHeaders(response.headers)
        if case .upgrade(let session) = response.body {
            // 101 Switching Protocols: the response's own Connection and Upgrade headers; then
            // the connection is the session's byte stream until it returns. The switch comes
            // before the head goes out: a client may send the moment it reads the head, and
            // those bytes must not reach the HTTP decoder.
            let bridge = try? await channel.eventLoop.submit {
                let bridge = try channel.pipeline.syncOperations.handler(type: ByteStreamBridge.self)
                bridge.switchToRaw()
                return bridge
            }.get()
            // Without its bridge (the channel closed already) the connection reads nothing.
            let connection = ByteStreamConnection(channel: channel, bridge: bridge ?? ByteStreamBridge(raw: true))
            defer { connection.close() }
            do {
                guard bridge != nil else { throw ChannelError.ioOnClosedChannel }
                try await send(.head(HTTPResponseHead(version: version, status: .init(statusCode: response.status), headers: headers)))
            } catch {
                // The client left before the switch: the session still runs, on a closed
                // connection, so it lets go of what it holds (a proxied agent's connection).
                connection.close()
                try? await session(connection)
                throw error
            }
            try await session(connection)
            return
        }
        headers.replaceOrAdd(name: "Connection", value: keepAlive ? "keep-alive" : "close")
        switch response.body {
        case .bytes(let bytes):
            headers.replaceOrAdd(name: "Content-Length", value: String(bytes.count))
            try await send(.head(HTTPResponseHead(version: version, status: .init(statusCode: response.status), headers: headers)))
            if !bytes.isEmpty { try await send(.body(.byteBuffer(ByteBuffer(bytes: bytes)))) }
            try await send(.end(nil))
        case .stream(let produce):
            headers.replaceOrAdd(name: "Transfer-Encoding", value: "chunked")
            try await send(.head(HTTPResponseHead(version: version, status: .init(statusCode: response.status), headers: headers)))
            // A client that goes away ends the stream at once (a quiet watch would otherwise hold
            // its slot until its next event).
            let producer = Task { try await produce(ChunkWriter { chunk in try await send(.body(.byteBuffer(ByteBuffer(bytes: chunk)))) }) }
            channel.closeFuture.whenComplete { _ in producer.cancel() }
            try await withTaskCancellationHandler { try await producer.value } onCancel: { producer.cancel() }
            try await send(.end(nil))
        case .upgrade:
            break  // written above
        }
    }

    /// A Kubernetes `Status` as a JSON body.
    public static func statusBytes(_ status: Status) -> [UInt8] {
        (try? KubeJSON.encode(status)) ?? Array(#"{"kind":"Status","apiVersion":"v1","status":"Failure"}"#.utf8)
    }

    /// The user and groups of a verified client certificate (CN and O), if one was presented.
    private static func clientIdentity(_ channel: any Channel) async -> RequestIdentity? {
        guard let certificate = try? await channel.nioSSL_peerCertificate().get(),
              let der = try? certificate.toDERBytes(),
              let parsed = try? CertificateFacts(der: der),
              let user = parsed.commonNames.last else { return nil }
        return RequestIdentity(user: user, groups: parsed.organizations)
    }
}

/// Closes a connection whose request does not arrive completely in time (slow-loris clients,
/// including ones that never finish the TLS handshake: the timer starts when the connection
/// opens) or that stays idle between requests; never interrupts a response being streamed.
final class RequestTimeoutHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private let requestTimeout: TimeAmount
    private let idleTimeout: TimeAmount
    private var deadline: Scheduled<Void>?

    init(requestTimeout: TimeAmount, idleTimeout: TimeAmount) {
        self.requestTimeout = requestTimeout
        self.idleTimeout = idleTimeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { arm(context, after: requestTimeout) }
    }

    func channelActive(context: ChannelHandlerContext) {
        arm(context, after: requestTimeout)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head:
            arm(context, after: requestTimeout)
        case .body: break
        case .end: disarm()
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) { arm(context, after: idleTimeout) }
        context.write(data, promise: promise)
    }

    func channelInactive(context: ChannelHandlerContext) {
        disarm()
        context.fireChannelInactive()
    }

    private func arm(_ context: ChannelHandlerContext, after timeout: TimeAmount) {
        disarm()
        let channel = context.channel
        deadline = context.eventLoop.scheduleTask(in: timeout) { channel.close(promise: nil) }
    }

    private func disarm() {
        deadline?.cancel()
        deadline = nil
    }
}

/// A connection's count against its address, given back once (at the end, or when an exempt
/// upgrade begins).
private final class AddressSlot: Sendable {
    private let held: Mutex<Bool>
    init(held: Bool) { self.held = Mutex(held) }
    /// True the first time, when it was held.
    func release() -> Bool { held.withLock { held in defer { held = false }; return held } }
}
