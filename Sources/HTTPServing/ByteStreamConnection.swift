import HTTPClientCore
import NIOCore
import NIOPosix
import NIOSSL

/// A connection as a plain byte stream, after an HTTP upgrade (101 Switching Protocols) or
/// from the start (a raw client connection): reads as the consumer asks for them (nothing is
/// read ahead of the consumer beyond what TLS decrypted at once, so a slow consumer slows the
/// peer), writes that wait until the bytes are on the socket.
public final class ByteStreamConnection: Sendable {
    let channel: any Channel
    let bridge: ByteStreamBridge

    init(channel: any Channel, bridge: ByteStreamBridge) {
        self.channel = channel
        self.bridge = bridge
    }

    /// The next bytes the peer sent, or nil once it closed (or the connection failed).
    public func read() async throws -> ByteBuffer? {
        let bridge = self.bridge
        return try await channel.eventLoop.flatSubmit { bridge.nextBytes() }.get()
    }

    /// A write the peer does not take within this time closes the connection (a client that
    /// stops reading cannot hold a session forever).
    public static let writeTimeout = TimeAmount.seconds(60)

    /// Writes and flushes; returns once the bytes are handed to the socket.
    public func write(_ buffer: ByteBuffer) async throws {
        let bridge = self.bridge
        let deadline = closeAfter(Self.writeTimeout)
        defer { deadline.cancel() }
        try await channel.eventLoop.flatSubmit { bridge.write(buffer) }.get()
    }

    public func write(_ bytes: [UInt8]) async throws { try await write(ByteBuffer(bytes: bytes)) }

    /// Closes the connection.
    public func close() {
        channel.close(promise: nil)
    }

    /// Stops sending and goes on reading (a half-close; where the transport has none, such as
    /// TLS, the whole connection closes).
    public func closeOutput() {
        let channel = self.channel
        channel.close(mode: .output).whenFailure { _ in channel.close(promise: nil) }
    }

    /// Closes the connection after `timeout` unless the returned task is cancelled first.
    public func closeAfter(_ timeout: TimeAmount) -> Scheduled<Void> {
        let channel = self.channel
        return channel.eventLoop.scheduleTask(in: timeout) { channel.close(promise: nil) }
    }

    /// Closes the connection once no byte has gone either way for `timeout` (checked at a
    /// twentieth of it, between every second and every minute, on the connection's event loop).
    public func closeWhenIdle(for timeout: TimeAmount) {
        let channel = self.channel, bridge = self.bridge
        // At most a minute between checks: a closed connection is let go of soon after.
        let period = TimeAmount.nanoseconds(min(60_000_000_000, max(1_000_000_000, timeout.nanoseconds / 20)))
        channel.eventLoop.execute {
            bridge.lastActivity = .now()
            @Sendable func check() {
                guard channel.isActive else { return }
                if NIODeadline.now() - bridge.lastActivity >= timeout {
                    channel.close(promise: nil)
                    return
                }
                channel.eventLoop.scheduleTask(in: period) { check() }
            }
            channel.eventLoop.scheduleTask(in: period) { check() }
        }
    }

    /// Whether the connection has closed.
    public var isClosed: Bool { !channel.isActive }

    /// A future that completes when the connection closes.
    public var closed: EventLoopFuture<Void> { channel.closeFuture }

    /// Connects to `host:port` (TLS with `tls`), with `configure` adding handlers after TLS;
    /// the whole connection is a byte stream. With `dialer`, the connection is the socket it
    /// returns (a tunnel stream's end, say) instead of a TCP connection to `host:port`.
    public static func connect(
        host: String, port: Int, tls: NIOSSLContext?, serverHostname: String?, connectTimeout: TimeAmount,
        dialer: StreamDialer? = nil, configure: (@Sendable (ChannelPipeline.SynchronousOperations) throws -> Void)? = nil
    ) async throws -> ByteStreamConnection {
        let initialize: @Sendable (any Channel) -> EventLoopFuture<ByteStreamConnection> = { channel in
            channel.eventLoop.makeCompletedFuture {
                let pipeline = channel.pipeline.syncOperations
                if let tls { try pipeline.addHandler(NIOSSLClientHandler(context: tls, serverHostname: serverHostname)) }
                try configure?(pipeline)
                let bridge = ByteStreamBridge(raw: true)
                try pipeline.addHandler(bridge)
                return ByteStreamConnection(channel: channel, bridge: bridge)
            }
        }
        let bootstrap = ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton).connectTimeout(connectTimeout)
        if let dialer {
            return try await bootstrap.withConnectedSocket(try await dialer(), channelInitializer: initialize)
        }
        return try await bootstrap
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelOption(.allowRemoteHalfClosure, value: tls == nil)
            .connect(host: host, port: port, channelInitializer: initialize)
    }

    /// A byte stream over a connected stream socket (this connection owns `descriptor`).
    public static func wrap(descriptor: CInt) async throws -> ByteStreamConnection {
        try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .withConnectedSocket(descriptor) { channel in
                channel.eventLoop.makeCompletedFuture {
                    let bridge = ByteStreamBridge(raw: true)
                    try channel.pipeline.syncOperations.addHandler(bridge)
                    return ByteStreamConnection(channel: channel, bridge: bridge)
                }
            }
    }
}

/// Sits right above TLS. Until ``switchToRaw`` it passes everything through to the HTTP codec
/// above it; afterwards the bytes go to the ``ByteStreamConnection`` instead and the HTTP
/// handlers see nothing more. Reads are asked for here (auto-read off in raw mode) while fewer
/// than ``bufferLimit`` bytes wait for the consumer, so a fast peer slows down instead of
/// filling memory. Event loop only.
final class ByteStreamBridge: ChannelDuplexHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    static let bufferLimit = 256 << 10

    private var raw: Bool
    private var context: ChannelHandlerContext?
    private var received = CircularBuffer<ByteBuffer>()
    private var receivedBytes = 0
    private var waiting: EventLoopPromise<ByteBuffer?>?
    private var ended: (any Error)??
    private var readHeldBack = false
    /// When bytes last went either way (for ``ByteStreamConnection/closeWhenIdle(for:)``).
    var lastActivity = NIODeadline.now()

    init(raw: Bool) { self.raw = raw }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if raw { startReading() }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        finish(nil)
    }

    /// From now on the connection is a byte stream (call on the event loop, before the 101
    /// response goes out: the peer may send as soon as it reads it).
    func switchToRaw() {
        raw = true
        startReading()
    }

    /// In raw mode this handler alone asks for reads (auto-read off): the HTTP handlers above
    /// hold reads while a response is unfinished, and TLS asks again by itself after a read
    /// that decrypted nothing only when auto-read is off.
    private func startReading() {
        guard let context else { return }
        try? context.channel.syncOptions?.setOption(ChannelOptions.autoRead, value: false)
        if context.channel.isActive { context.read() }
    }

    func channelActive(context: ChannelHandlerContext) {
        if raw { context.read() }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard raw else { return context.fireChannelRead(data) }
        let buffer = unwrapInboundIn(data)
        lastActivity = .now()
        if let waiting {
            self.waiting = nil
            waiting.succeed(buffer)
        } else {
            received.append(buffer)
            receivedBytes += buffer.readableBytes
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        guard raw else { return context.fireChannelReadComplete() }
        if receivedBytes < Self.bufferLimit { context.read() } else { readHeldBack = true }
    }

    func read(context: ChannelHandlerContext) {
        if raw, receivedBytes >= Self.bufferLimit {
            readHeldBack = true
        } else {
            context.read()
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        finish(nil)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard raw else { return context.fireErrorCaught(error) }
        finish(error)
        context.close(promise: nil)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if raw, let event = event as? ChannelEvent, event == .inputClosed {
            finish(nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    private func finish(_ error: (any Error)?) {
        if ended == nil { ended = .some(error) }
        if let waiting {
            self.waiting = nil
            if let error { waiting.fail(error) } else { waiting.succeed(nil) }
        }
    }

    /// The next bytes (one reader at a time), nil at the end.
    func nextBytes() -> EventLoopFuture<ByteBuffer?> {
        // What arrived before the channel closed is still read (a peer that sends and closes
        // while this side has closed its output ends the whole channel at once).
        if let buffer = received.popFirst() {
            receivedBytes -= buffer.readableBytes
            if let context, readHeldBack, receivedBytes < Self.bufferLimit {
                readHeldBack = false
                context.read()
            }
            return (context?.eventLoop ?? MultiThreadedEventLoopGroup.singleton.any()).makeSucceededFuture(buffer)
        }
        guard let context else { return MultiThreadedEventLoopGroup.singleton.any().makeSucceededFuture(nil) }
        if let ended {
            if let error = ended { return context.eventLoop.makeFailedFuture(error) }
            return context.eventLoop.makeSucceededFuture(nil)
        }
        if waiting != nil { return context.eventLoop.makeFailedFuture(ConcurrentReadError()) }
        let promise = context.eventLoop.makePromise(of: ByteBuffer?.self)
        waiting = promise
        return promise.futureResult
    }

    func write(_ buffer: ByteBuffer) -> EventLoopFuture<Void> {
        lastActivity = .now()
        guard let context else { return MultiThreadedEventLoopGroup.singleton.any().makeFailedFuture(ChannelError.ioOnClosedChannel) }
        return context.writeAndFlush(wrapOutboundOut(buffer))
    }
}

/// A second reader while one waits (a programming error, reported rather than trapped).
struct ConcurrentReadError: Error, CustomStringConvertible {
    var description: String { "a byte stream was read by two readers at once" }
}

