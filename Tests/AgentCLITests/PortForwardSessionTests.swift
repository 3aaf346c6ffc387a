import CRuntime
import Foundation
@testable import Agent
import HTTPServing
import IotkubeTestSupport
import NIOCore
import Testing

/// The agent's port-forward over SPDY against a real echo server on this host's loopback: the
/// frames kubectl and kube-apiserver send, half-closes kept, failures on the error stream, and
/// the bounds a hostile client meets.
@Suite(.ownThread, .enabled(if: toolAvailable("busybox"), "needs busybox (nc)"))
struct PortForwardSessionTests {
    struct Harness {
        let client: SPDYTestClient
        let run: Task<Void, Never>

        init(podLabel: String = "pod-a, uid 1", stallLimit: Duration = .seconds(30)) async throws {
            let (server, descriptor) = try await TunnelPump.socketPair()
            client = try SPDYTestClient(connection: try await ByteStreamConnection.wrap(descriptor: descriptor))
            let session = PortForwardSession(session: try SPDYSession(connection: server), podLabel: podLabel, stallLimit: stallLimit) { port in
                await AgentEndpoint.dialLoopback(port, networkNamespace: nil)
            }
            run = Task { await session.run() }
        }

        func pair(_ request: Int, error: UInt32, data: UInt32, port: String) async throws {
            try await client.open(error, headers: [("streamtype", "error"), ("port", port), ("requestid", String(request))])
            try await client.open(data, headers: [("streamtype", "data"), ("port", port), ("requestid", String(request))])
        }

        /// Frames until `stream` ends (FIN or reset); the bytes it carried, and every frame seen.
        func collect(_ stream: UInt32) async throws -> (bytes: [UInt8], frames: [SPDYFrame]) {
            var bytes: [UInt8] = [], frames: [SPDYFrame] = []
            while let frame = try await client.frame() {
                frames.append(frame)
                if case .data(stream, let chunk, let fin) = frame {
                    bytes += chunk
                    if fin { break }
                }
                if case .rstStream(stream, _) = frame { break }
            }
            return (bytes, frames)
        }
    }

    /// A server on this host's loopback running `program` per connection (`cat`: an echo).
    static func echoServer(_ program: [String] = ["cat"]) throws -> (BackgroundProcess, Int) {
        let port = try ServerProcess.freePort()
        let log = NSTemporaryDirectory() + "echo-\(port).log"
        let server = try BackgroundProcess("/bin/busybox", ["nc", "-ll", "-p", String(port), "-e"] + program, logPath: log)
        for _ in 0..<100 {
            var error = [CChar](repeating: 0, count: 256)
            let probe = iotkube_connect_loopback_in_netns(nil, UInt16(port), 1000, &error, 256)
            if probe >= 0 {
                close(probe)
                break
            }
            Thread.sleep(forTimeInterval: 0.05)
        }
        return (server, port)
    }

    /// 1 MB out, the client's FIN, and all of it echoed back before the data stream's FIN; then
    /// the error stream ends empty.
    @Test func aConnectionIsEchoedWholeAcrossAHalfClose() async throws {
        let (echo, port) = try Self.echoServer()
        defer { echo.stop() }
        let harness = try await Harness()
        try await harness.pair(0, error: 1, data: 3, port: String(port))
        let payload = (0..<1_000_000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 8) }
        var offset = 0
        while offset < payload.count {
            let end = min(payload.count, offset + 32768)
            try await harness.client.connection.write(ByteBuffer(bytes: SPDYFrame.data(stream: 3, bytes: Array(payload[offset..<end]), fin: end == payload.count).encoded))
            offset = end
        }
        let (echoed, frames) = try await harness.collect(3)
        #expect(echoed.count == payload.count && echoed == payload, "\(echoed.count) of \(payload.count) bytes echoed")
        #expect(frames.filter { if case .synReply = $0 { true } else { false } }.count == 2)
        let (errors, _) = try await harness.collect(1)
        #expect(errors.isEmpty, "\(String(decoding: errors, as: UTF8.self))")
        harness.client.connection.close()
        await harness.run.value
    }

    /// A closed port and a bad one fail on their error streams, named as the kubelet names them.
    @Test func failuresGoOnTheErrorStream() async throws {
        let harness = try await Harness()
        let closed = try ServerProcess.freePort()
        try await harness.pair(0, error: 1, data: 3, port: String(closed))
        let (refused, _) = try await harness.collect(1)
        #expect(String(decoding: refused, as: UTF8.self) == "error forwarding port \(closed) to pod pod-a, uid 1: connecting to localhost:\(closed): Connection refused")
        try await harness.pair(1, error: 5, data: 7, port: "70000")
        let (invalid, _) = try await harness.collect(5)
        #expect(String(decoding: invalid, as: UTF8.self).hasSuffix("invalid port"))
        harness.client.connection.close()
        await harness.run.value
    }

    /// Streams without a port or type are refused; a pair's streams must agree; past 64 open
    /// connections new ones are refused, and the session still serves.
    @Test func hostileStreamsAreRefused() async throws {
        let harness = try await Harness()
        try await harness.client.open(1, headers: [("streamtype", "data")])
        try await harness.client.open(3, headers: [("streamtype", "stdin"), ("port", "80")])
        try await harness.client.open(5, headers: [("streamtype", "error"), ("port", "80"), ("requestid", "x")])
        try await harness.client.open(7, headers: [("streamtype", "data"), ("port", "81"), ("requestid", "x")])
        try await harness.client.open(9, headers: [("streamtype", "error"), ("port", "80"), ("requestid", String(repeating: "9", count: 40))])
        var refused: [UInt32] = []
        var replied: [UInt32] = []
        while refused.count + replied.count < 5, let frame = try await harness.client.frame() {
            if case .rstStream(let id, SPDYFrame.refusedStream) = frame { refused.append(id) }
            if case .synReply(let id, _, _) = frame { replied.append(id) }
        }
        #expect(refused == [1, 3, 7, 9] && replied == [5])
        // 63 more half-open pairs fill the table; the next is refused.
        for index in 0..<64 { try await harness.client.open(UInt32(11 + 2 * index), headers: [("streamtype", "error"), ("port", "80"), ("requestid", "h\(index)")]) }
        var last: SPDYFrame?
        for _ in 0..<64 { last = try await harness.client.frame() }
        #expect(last == .rstStream(stream: 11 + 2 * 63, status: SPDYFrame.refusedStream), "\(String(describing: last))")
        // A half-open pair the client resets leaves the table: a new one is taken.
        try await harness.client.connection.write(ByteBuffer(bytes: SPDYFrame.rstStream(stream: 11, status: SPDYFrame.cancel).encoded))
        try await harness.client.open(301, headers: [("streamtype", "error"), ("port", "80"), ("requestid", "after-reset")])
        try await harness.client.open(303, headers: [("streamtype", "error"), ("port", "8o"), ("requestid", "bad-port")])
        let answers = [try await harness.client.frame(), try await harness.client.frame()]
        #expect(answers.contains { if case .synReply(301, _, _)? = $0 { true } else { false } }, "\(answers)")
        #expect(answers.contains(.rstStream(stream: 303, status: SPDYFrame.refusedStream)), "\(answers)")
        harness.client.connection.close()
        await harness.run.value
    }

    /// A pod that accepts and never reads stalls only its own connection, and only for the
    /// stall limit: then it is reset with a reason and the session serves the next one. Data on
    /// a half-open pair is refused at once instead of queued where nothing reads it.
    @Test func aStuckPodOrAHalfOpenPairCannotHoldTheSession() async throws {
        let (stuck, stuckPort) = try Self.echoServer(["sleep", "60"])
        defer { stuck.stop() }
        let (echo, echoPort) = try Self.echoServer()
        defer { echo.stop() }
        let harness = try await Harness(stallLimit: .seconds(1))
        // Data only on a data stream whose error stream never came.
        try await harness.client.open(1, headers: [("streamtype", "data"), ("port", String(echoPort)), ("requestid", "lonely")])
        try await harness.client.connection.write(ByteBuffer(bytes: SPDYFrame.data(stream: 1, bytes: [UInt8](repeating: 7, count: 32768), fin: false).encoded))
        let (_, lonelyFrames) = try await harness.collect(1)
        #expect(lonelyFrames.contains(.rstStream(stream: 1, status: SPDYFrame.cancel)), "\(lonelyFrames)")

        // 32 MB toward a pod that never reads (more than the kernel's loopback buffers take):
        // once the queue and the sockets are full, the session waits a second and resets that
        // connection (what the client sends on it afterwards is dropped).
        try await harness.pair(0, error: 3, data: 5, port: String(stuckPort))
        let chunk = [UInt8](repeating: 1, count: 32768)
        for _ in 0..<1024 {
            do { try await harness.client.connection.write(ByteBuffer(bytes: SPDYFrame.data(stream: 5, bytes: chunk, fin: false).encoded)) } catch { break }
        }
        let (reason, _) = try await harness.collect(3)
        #expect(String(decoding: reason, as: UTF8.self).contains("the pod did not read what was sent"), "\(String(decoding: reason, as: UTF8.self))")

        // The session goes on: a new connection is echoed.
        try await harness.pair(1, error: 7, data: 9, port: String(echoPort))
        try await harness.client.connection.write(ByteBuffer(bytes: SPDYFrame.data(stream: 9, bytes: Array("still here".utf8), fin: true).encoded))
        var echoed: [UInt8] = []
        while let frame = try await harness.client.frame() {
            if case .data(9, let bytes, let fin) = frame {
                echoed += bytes
                if fin { break }
            }
        }
        #expect(String(decoding: echoed, as: UTF8.self) == "still here")
        harness.client.connection.close()
        await harness.run.value
    }
}
