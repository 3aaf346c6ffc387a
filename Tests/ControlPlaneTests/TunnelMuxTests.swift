import Crypto
import Foundation
import HTTPServing
import IotkubeTestSupport
import NIOCore
import Testing

/// The agent tunnel's multiplexer over a real socket pair: many streams share one WebSocket,
/// each with its own credit; a peer breaking the rules loses its stream or the tunnel.
@Suite(.ownThread) struct TunnelMuxTests {
    /// Two WebSocket ends over a local socket pair: the server's (opener) and the agent's.
    static func sockets() async throws -> (server: WebSocketStream, agent: WebSocketStream) {
        let (a, descriptor) = try await TunnelPump.socketPair()
        let b = try await ByteStreamConnection.wrap(descriptor: descriptor)
        return (WebSocketStream(connection: a, role: .server), WebSocketStream(connection: b, role: .client))
    }

    /// Masked client frames (every length around the 8-byte steps of the masking, and large
    /// ones) arrive as sent, and unmasked server frames too.
    @Test func messagesOfEveryLengthSurviveMasking() async throws {
        let (server, agent) = try await Self.sockets()
        for length in Array(0...20) + [125, 126, 65535, 65536, 300_001] {
            let bytes = Self.pattern(length, seed: UInt8(length & 0xFF))
            try await agent.send(.binary, bytes)
            #expect(try await server.next()?.payload == bytes, "client to server, \(length) bytes")
            try await server.send(.binary, bytes)
            #expect(try await agent.next()?.payload == bytes, "server to client, \(length) bytes")
        }
    }

    /// Echoes each stream's bytes back, then closes its end.
    static let echo: @Sendable (TunnelStream) async -> Void = { stream in
        do {
            try await stream.confirmOpened()
            while let bytes = try await stream.read() { try await stream.write(bytes) }
            await stream.closeWrite()
        } catch {}
        stream.finish()
    }

    static func pattern(_ count: Int, seed: UInt8) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ Int(seed)) }
    }

    /// Writes `bytes` and reads everything back until the peer closes.
    static func roundTrip(_ stream: TunnelStream, _ bytes: [UInt8]) async throws -> [UInt8] {
        try await withThrowingTaskGroup(of: [UInt8].self) { group in
            group.addTask {
                try await stream.write(bytes)
                await stream.closeWrite()
                return []
            }
            group.addTask {
                var back: [UInt8] = []
                while let more = try await stream.read() { back += more }
                return back
            }
            var back: [UInt8] = []
            for try await part in group { back += part }
            stream.finish()
            return back
        }
    }

    @Test func concurrentStreamsCarryTheirOwnBytesBothWays() async throws {
        let (serverSocket, agentSocket) = try await Self.sockets()
        let server = TunnelMux(socket: serverSocket, role: .opener)
        let agent = TunnelMux(socket: agentSocket, role: .acceptor)
        await withTaskGroup(of: Void.self) { group in
            group.addTask { _ = await server.run() }
            group.addTask { _ = await agent.run(accept: Self.echo) }
            group.addTask {
                await withTaskGroup(of: String?.self) { streams in
                    for index in 0..<16 {
                        streams.addTask {
                            let bytes = Self.pattern(1_000_000 + index * 7919, seed: UInt8(index))
                            do {
                                let back = try await Self.roundTrip(try await server.open(), bytes)
                                return SHA256.hash(data: back) == SHA256.hash(data: bytes) ? nil : "stream \(index): \(back.count) other bytes came back"
                            } catch {
                                return "stream \(index): \(error)"
                            }
                        }
                    }
                    var failures: [String] = []
                    for await failure in streams { if let failure { failures.append(failure) } }
                    // Why, when it fails: the streams' errors and how each side's tunnel ended.
                    #expect(failures.isEmpty, "\(failures.count) of 16 streams failed: \(failures.prefix(3)); tunnel end: \(server.endReason ?? "running") / \(agent.endReason ?? "running")")
                }
                #expect(server.streamCount == 0 && agent.streamCount == 0, "finished streams are forgotten")
                server.end("the test is over")
            }
        }
    }

    /// A consumer that stops reading holds up only its own stream: its sender stops at one
    /// window, while another stream goes on.
    @Test func aStalledStreamStopsAtItsWindowWithoutHoldingUpOthers() async throws {
        let (serverSocket, agentSocket) = try await Self.sockets()
        let server = TunnelMux(socket: serverSocket, role: .opener)
        let stalled = Counter()
        let agent = TunnelMux(socket: agentSocket, role: .acceptor)
        await withTaskGroup(of: Void.self) { group in
            group.addTask { _ = await server.run() }
            group.addTask {
                _ = await agent.run { stream in
                    if stream.id == 1 {
                        // Never reads: the peer must stop after one window.
                        try? await stream.confirmOpened()
                        stalled.increment()
                        _ = try? await stream.read()  // takes one message; grants nothing more
                        return
                    }
                    await Self.echo(stream)
                }
            }
            group.addTask {
                do {
                    let first = try await server.open()
                    let written = Counter()
                    let writer = Task {
                        for _ in 0..<64 {
                            try await first.write(Self.pattern(16 << 10, seed: 1))
                            written.add(16 << 10)
                        }
                    }
                    let second = try await server.open()
                    let bytes = Self.pattern(2_000_000, seed: 2)
                    let back = try await Self.roundTrip(second, bytes)
                    #expect(back == bytes, "the second stream is not held up by the first")
                    // The stalled stream uses its window (however busy the machine is)...
                    let deadline = ContinuousClock.now + .seconds(60)
                    while written.value < TunnelMux.window - (16 << 10), ContinuousClock.now < deadline {
                        try await Task.sleep(for: .milliseconds(50))
                    }
                    #expect(written.value >= TunnelMux.window - (16 << 10), "the stalled stream used its window: \(written.value)")
                    // ...and no more: the first read of the stalled side takes one message off,
                    // so at most one window plus that message went out.
                    try await Task.sleep(for: .milliseconds(500))
                    #expect(written.value <= TunnelMux.window + TunnelMessage.maximumData, "the stalled stream sent \(written.value) bytes")
                    server.end("the test is over")
                    _ = await writer.result
                } catch {
                    Issue.record("\(error)")
                    server.end("failed")
                }
            }
        }
    }

    /// The agent may not open streams toward the server (only the server the node joined opens
    /// them): the server ends the tunnel.
    @Test func anAgentOpeningAStreamLosesItsTunnel() async throws {
        let (serverSocket, agentSocket) = try await Self.sockets()
        let server = TunnelMux(socket: serverSocket, role: .opener)
        async let reason = server.run()
        try await agentSocket.send(.binary, TunnelMessage.open(7).encoded)
        let ended = await reason
        #expect(ended.contains("the agent tried to open a stream"), "\(ended)")
        await #expect(throws: TunnelStream.Reset.self, "no stream opens on an ended tunnel") { _ = try await server.open(timeout: .seconds(1)) }
    }

    /// A sender that ignores its credit gets its stream reset (its bytes are not buffered).
    @Test func dataPastTheCreditResetsTheStream() async throws {
        let (serverSocket, agentSocket) = try await Self.sockets()
        let agent = TunnelMux(socket: agentSocket, role: .acceptor)
        let accepted = Counter()
        async let ended = agent.run { stream in
            try? await stream.confirmOpened()
            accepted.increment()
            _ = try? await stream.read()
        }
        try await serverSocket.send(.binary, TunnelMessage.open(1).encoded)
        #expect(try await serverSocket.next().map { try TunnelMessage(decoding: $0.payload) } == .opened(1))
        let chunk = [UInt8](repeating: 0x41, count: TunnelMessage.maximumData)
        for _ in 0...(TunnelMux.window / chunk.count) { try await serverSocket.send(.binary, TunnelMessage.data(1, chunk).encoded) }
        var reset: String?
        while let message = try await serverSocket.next() {
            if case .reset(1, let reason) = try TunnelMessage(decoding: message.payload) { reset = reason; break }
        }
        #expect(reset?.contains("past its credit") == true, "\(reset ?? "no reset")")
        agent.end("the test is over")
        _ = await ended
    }

    @Test func malformedMessagesEndTheTunnelWithAReason() async throws {
        for (bytes, expected) in [([UInt8](), "empty"), ([3, 0, 0, 0, 1], "data message of 0 bytes"), ([4, 0, 0, 0, 1, 9], "4-byte count"), ([42, 0, 0, 0, 1], "unknown tunnel message type 42"), ([7, 1], "keepalive with a payload")] {
            let (serverSocket, agentSocket) = try await Self.sockets()
            let agent = TunnelMux(socket: agentSocket, role: .acceptor)
            async let ended = agent.run(accept: Self.echo)
            try await serverSocket.send(.binary, bytes)
            let reason = await ended
            #expect(reason.contains(expected), "\(bytes): \(reason)")
        }
    }

    @Test func theStreamLimitHolds() async throws {
        let (serverSocket, agentSocket) = try await Self.sockets()
        let server = TunnelMux(socket: serverSocket, role: .opener)
        let agent = TunnelMux(socket: agentSocket, role: .acceptor)
        await withTaskGroup(of: Void.self) { group in
            group.addTask { _ = await server.run() }
            group.addTask { _ = await agent.run { stream in try? await stream.confirmOpened(); _ = try? await stream.read() } }
            group.addTask {
                var open: [TunnelStream] = []
                for _ in 0..<TunnelMux.maximumStreams { if let stream = try? await server.open() { open.append(stream) } }
                #expect(open.count == TunnelMux.maximumStreams)
                await #expect(throws: TunnelStream.Reset.self) { _ = try await server.open() }
                // The tunnel ending fails every open stream (no reader waits forever).
                server.end("the test is over")
                for stream in open { await #expect(throws: TunnelStream.Reset.self) { _ = try await stream.read() } }
            }
        }
    }

    @Test func messagesRoundTrip() throws {
        for message in [TunnelMessage.open(1), .opened(UInt32.max), .data(5, [1, 2, 3]), .credit(9, 0x01020304), .close(3), .reset(4, "why"), .keepalive] {
            #expect(try TunnelMessage(decoding: message.encoded) == message)
        }
    }
}

/// A thread-safe counter for the tests.
final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    var value: Int { lock.withLock { count } }
    func increment() { add(1) }
    func add(_ amount: Int) { lock.withLock { count += amount } }
}
