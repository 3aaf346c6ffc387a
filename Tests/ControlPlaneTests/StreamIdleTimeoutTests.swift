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
        var lastTraffic = ContinuousClock.now
        for round in 0..<6 {
            lastTraffic = ContinuousClock.now
            if round % 2 == 0 { try await client.write([1]) } else { try await server.write([2]) }
            try await Task.sleep(for: .milliseconds(700))
        }
        #expect(!server.isClosed, "a stream with traffic was closed")
        // Silence: closed within the timeout and a check period, and not before the timeout has
        // passed since the last byte (measured from before that byte was written, so a slow
        // machine cannot make the close look early).
        while !server.isClosed, ContinuousClock.now - lastTraffic < .seconds(12) { try await Task.sleep(for: .milliseconds(100)) }
        #expect(server.isClosed, "a silent stream stayed open")
        #expect(ContinuousClock.now - lastTraffic >= .seconds(2), "closed before the timeout")
        client.close()
    }
}
