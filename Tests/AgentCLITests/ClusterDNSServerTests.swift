import Agent
import Foundation
import IotkubeTestSupport
import KubeModel
import Logging
import PodNetwork
import ServiceLifecycle
import Testing

/// The cluster DNS server over real UDP: cluster names answered from the catalog, other names
/// forwarded to an upstream (another instance, authoritative for its own domain), and packets
/// a hostile pod sends (responses, floods of names) handled without harm.
@Suite(.serialized)
struct ClusterDNSServerTests {
    /// ``ask(_:port:timeout:)`` on a thread of its own (the wait must not hold a cooperative thread).
    static func asked(_ query: [UInt8], port: Int, timeout: Double = 3) async throws -> [UInt8]? {
        try await onOwnThread { ask(query, port: port, timeout: timeout) }
    }

    /// Sends `query` to 127.0.0.1:`port` and returns the reply, or nil after `timeout` seconds.
    static func ask(_ query: [UInt8], port: Int, timeout: Double = 3) -> [UInt8]? {
        let descriptor = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(descriptor) }
        var wait = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - timeout.rounded(.down)) * 1_000_000))
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &wait, socklen_t(MemoryLayout<timeval>.size))
        var target = sockaddr_in()
        target.sin_family = sa_family_t(AF_INET)
        target.sin_port = in_port_t(UInt16(port).bigEndian)
        target.sin_addr.s_addr = inet_addr("127.0.0.1")
        let sent = withUnsafePointer(to: &target) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(descriptor, query, query.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard sent == query.count else { return nil }
        var buffer = [UInt8](repeating: 0, count: 65536)
        let received = recv(descriptor, &buffer, buffer.count, 0)
        return received > 0 ? Array(buffer.prefix(received)) : nil
    }

    static func query(_ name: String, type: UInt16 = 1, id: UInt16 = 0x1234) -> [UInt8] {
        var bytes: [UInt8] = [UInt8(id >> 8), UInt8(id & 0xFF), 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]
        for label in name.split(separator: ".") { bytes.append(UInt8(label.utf8.count)); bytes += Array(label.utf8) }
        bytes += [0, UInt8(type >> 8), UInt8(type & 0xFF), 0, 1]
        return bytes
    }

    static func catalog(endpoints: Int = 2, domainService: String = "web") -> ServiceCatalog {
        let catalog = ServiceCatalog()
        var web = KubeService(metadata: ObjectMeta(name: domainService, namespace: "default"), spec: ServiceSpec(ports: [ServicePort(name: "http", port: 80)], selector: ["app": "web"]))
        web.spec?.clusterIP = "10.43.5.5"
        var headless = KubeService(metadata: ObjectMeta(name: "many", namespace: "default"), spec: ServiceSpec(ports: [ServicePort(name: "p", port: 1)], selector: ["a": "b"]))
        headless.spec?.clusterIP = "None"
        // A hostile API's headless service with 70,000 ready endpoints over 70 slices.
        let slices = (0..<(endpoints + 999) / 1000).map { slice in
            EndpointSlice(metadata: ObjectMeta(name: "many-\(slice)", namespace: "default", labels: [EndpointSlice.serviceNameLabel: "many"]),
                          endpoints: (0..<min(1000, endpoints - slice * 1000)).map { index in
                              let number = UInt32(slice * 1000 + index)
                              var endpoint = Endpoint(addresses: [IPv4Network.format(0x0A00_0000 + number + 1)], conditions: EndpointConditions(ready: true))
                              endpoint.hostname = "same"
                              return endpoint
                          }, ports: [EndpointPort(name: "p", port: 1, protocol: "TCP")])
        }
        catalog.replaceServices([web, headless])
        catalog.replaceSlices(slices)
        return catalog
    }

    /// Runs `server` during `body`, once it answers (a loaded machine may take seconds to bind it).
    static func serving(_ server: ClusterDNSServer, port: Int, domain: String, _ body: () async throws -> Void) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await server.run() }
            for _ in 0..<30 {
                if try await asked(query("probe.svc.\(domain)", id: 1), port: port, timeout: 1) != nil { break }
            }
            defer { group.cancelAll() }
            try await body()
        }
    }

    @Test func answersClusterNamesForwardsTheRestAndIgnoresResponses() async throws {
        let logger = Logger(label: "test.dns")
        let upstreamPort = try ServerProcess.freePort()
        let port = try ServerProcess.freePort()
        // The upstream: another instance, authoritative for example.test.
        let upstream = ClusterDNSServer(address: "127.0.0.1", port: upstreamPort, domain: "example.test", catalog: Self.catalog(domainService: "outside"),
                                        upstreams: { [] }, logger: logger)
        let server = ClusterDNSServer(address: "127.0.0.1", port: port, domain: "cluster.local", catalog: Self.catalog(endpoints: 70_000),
                                      upstreams: { ["127.0.0.1"] }, upstreamPort: upstreamPort, logger: logger)
        try await Self.serving(upstream, port: upstreamPort, domain: "example.test") {
            try await Self.serving(server, port: port, domain: "cluster.local") {
                let local = try #require(await Self.asked(Self.query("web.default.svc.cluster.local", id: 7), port: port))
                #expect(local[0] == 0 && local[1] == 7 && local[3] & 0x0F == 0 && local[7] == 1, "one answer")
                #expect(Array(local.suffix(4)) == [10, 43, 5, 5])
                // Not a cluster name: forwarded, and the upstream's answer relayed with our id.
                let forwarded = try #require(await Self.asked(Self.query("outside.default.svc.example.test", id: 9), port: port))
                #expect(forwarded[1] == 9 && Array(forwarded.suffix(4)) == [10, 43, 5, 5])
                // 70,000 endpoints of one name: a 512-byte answer marked truncated, no crash.
                for name in ["many.default.svc.cluster.local", "same.many.default.svc.cluster.local"] {
                    let many = try #require(await Self.asked(Self.query(name), port: port))
                    #expect(many.count <= 512 && many[2] & 0x02 != 0, "\(name): \(many.count) bytes")
                }
                let srv = try #require(await Self.asked(Self.query("_p._tcp.many.default.svc.cluster.local", type: 33), port: port))
                #expect(srv.count <= 512)
                // A response sent to it (a reflection loop's first step) gets no answer at all.
                var response = Self.query("web.default.svc.cluster.local")
                response[2] |= 0x80
                #expect(try await Self.asked(response, port: port, timeout: 0.5) == nil)
                // Garbage with a header: FORMERR; the server keeps answering afterwards.
                let garbage: [UInt8] = [1, 2, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xC0, 12]
                #expect(try await Self.asked(garbage, port: port)?[3] == 0x81)
                #expect(try await Self.asked(Self.query("nope.default.svc.cluster.local"), port: port)?[3] == 0x83)
            }
        }
    }
}
