import Foundation
import HTTPClientCore
import IotkubeTestSupport
import NIOCore
import NIOHTTP1
import Testing

/// The connection core the API, registry and probe clients share.
@Suite(.ownThread) struct HTTPClientConnectionTests {
    @Test func ipLiteralsGetNoServerName() {
        for address in ["127.0.0.1", "10.0.0.2", "::1", "fe80::1%eth0", "2001:db8::2"] {
            #expect(HTTPClientConnection.isIPAddress(address) && HTTPClientConnection.serverName(for: address) == nil, "\(address)")
        }
        for name in ["registry.local", "1.2.3", "1.2.3.4.5", "256.1.1.1", "1..2.3", "k8s.io", "0001.2.3.4"] {
            #expect(!HTTPClientConnection.isIPAddress(name) && HTTPClientConnection.serverName(for: name) == name, "\(name)")
        }
    }

    /// A server that accepts (the kernel does, from its backlog) and never answers: the
    /// idle-read timeout closes the connection and says so.
    @Test func aServerThatNeverAnswersIsClosedByTheIdleTimeout() async throws {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        try #require(listener >= 0)
        defer { close(listener) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, length) == 0 && listen(listener, 4) == 0 && getsockname(listener, $0, &length) == 0 }
        }
        try #require(bound)
        let port = Int(UInt16(bigEndian: address.sin_port))
        let connection = try await HTTPClientConnection.connect(host: "127.0.0.1", port: port, connectTimeout: .seconds(5), idleReadTimeout: .seconds(1))
        let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/", headers: ["Host": "127.0.0.1"])
        let parts = try await connection.channel.executeThenClose { inbound, outbound in
            try await HTTPClientConnection.write([.head(head), .end(nil)], to: outbound, reasonFrom: inbound)
            var count = 0
            for try await _ in inbound { count += 1 }
            return count
        }
        #expect(parts == 0)
        #expect(connection.idle.fired)
    }
}
