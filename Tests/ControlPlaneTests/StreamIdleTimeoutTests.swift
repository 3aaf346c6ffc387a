import Foundation
import HTTPServing
import IotkubeTestSupport
import NIOCore
import Testing

/// The idle timeout of upgraded streams (the kubelet's `streamingConnectionIdleTimeout`): bytes
/// either way keep a stream open, silence closes it.
@Suite(.ownThread) struct StreamIdleTimeoutTests {
    @Test func silenceClosesAStreamAndTrafficKeepsItOpen() async throws {
        let (server, descriptor) = try await TunnelPump.socketPair()
        let client = try await ByteStreamConnection.wrap(descriptor: descriptor)
        server.closeWhenIdle(for: .seconds(2))
        // Traffic each way, for longer than the timeout: still open.
        for round in 0..<6 {
            if round % 2 == 0 { try await client.write([1]) } else { try await server.write([2]) }
            try await Task.sleep(for: .milliseconds(700))
        }
        #expect(!server.isClosed, "a stream with traffic was closed")
        // Silence: closed within the timeout and a check period.
        let silent = ContinuousClock.now
        while !server.isClosed, ContinuousClock.now - silent < .seconds(10) { try await Task.sleep(for: .milliseconds(100)) }
        #expect(server.isClosed, "a silent stream stayed open")
        #expect(ContinuousClock.now - silent >= .seconds(1), "closed before the timeout")
        client.close()
    }
}
