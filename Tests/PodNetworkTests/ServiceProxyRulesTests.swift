import Foundation
import IotkubeTestSupport
import KubeModel
import PodNetwork
import Testing

/// The service proxy's nftables rules in real network namespaces with the real `nft`: an
/// incremental transaction leaves the kernel exactly where replacing the whole table would,
/// create/delete cycles leave nothing behind, and real connections reach the endpoints.
@Suite(.serialized)
struct ServiceProxyRulesTests {
    static var ready: Bool { getuid() == 0 && NFTablesProxy.find() != nil && toolAvailable("ip") && toolAvailable("busybox") && toolAvailable("curl") }
    static let skipReason: Comment = "needs root, nft (apt-get install nftables), ip, busybox and curl"

    /// A network namespace of its own and an `nft` that works inside it.
    final class Namespace {
        let name = "iotkube-proxy-" + String(UUID().uuidString.prefix(8)).lowercased()
        let nft: String
        let iptablesRestore: String
        let iptables: String

        init() throws {
            let name = self.name
            guard try ServerProcess.run("/usr/sbin/ip", ["netns", "add", name]).status == 0 else { throw TestFailure("ip netns add \(name)") }
            func wrapper(_ tool: String) throws -> String {
                let path = NSTemporaryDirectory() + name + "-" + (tool.split(separator: "/").last.map(String.init) ?? tool)
                try "#!/bin/sh\nexec /usr/sbin/ip netns exec \(name) \(tool) \"$@\"\n".write(toFile: path, atomically: true, encoding: .utf8)
                chmod(path, 0o755)
                return path
            }
            nft = try wrapper(NFTablesProxy.find() ?? "nft")
            iptablesRestore = try wrapper(IPTablesProxy.find()?.restore ?? "iptables-restore")
            iptables = try wrapper(IPTablesProxy.find()?.iptables ?? "iptables")
        }

        deinit {
            _ = try? ServerProcess.run("/usr/sbin/ip", ["netns", "delete", name])
            for path in [nft, iptablesRestore, iptables] { try? FileManager.default.removeItem(atPath: path) }
        }

        func backend(_ name: String) -> ServiceProxyBackend {
            name == "iptables" ? .iptables(IPTablesProxy(restore: iptablesRestore, iptables: iptables)) : .nftables(NFTablesProxy(nft: nft))
        }

        @discardableResult
        func run(_ command: String, timeout: TimeInterval = 30) throws -> (status: Int32, output: String) {
            try ServerProcess.run("/usr/sbin/ip", ["netns", "exec", name, "/bin/sh", "-c", command], timeout: timeout)
        }

        /// The table as nft lists it, in a form where only content counts: the blocks by name,
        /// a chain's rules in order, a map's or set's elements as a set.
        func table() throws -> [String: [String]] {
            let listing = try run("nft list table ip \(ProxyRuleset.table)").output
            var blocks: [String: [String]] = [:]
            var current: String?
            for raw in listing.split(separator: "\n") {
                let line = raw.trimmingCharacters(in: .whitespaces).trimmingCharacters(in: CharacterSet(charactersIn: ","))
                if line.hasPrefix("chain ") || line.hasPrefix("map ") || line.hasPrefix("set ") {
                    current = line
                    blocks[line] = []
                } else if line == "}" || line.isEmpty || line.hasPrefix("table ") {
                    continue
                } else if let current {
                    blocks[current, default: []].append(line.replacingOccurrences(of: "elements = { ", with: "").replacingOccurrences(of: " }", with: ""))
                }
            }
            for (name, lines) in blocks where !name.hasPrefix("chain ") { blocks[name] = lines.sorted() }
            return blocks
        }
    }

    static func service(_ name: String, clusterIP: String, port: Int32 = 80, nodePort: Int32? = nil, affinity: Bool = false) -> KubeService {
        var spec = ServiceSpec(ports: [ServicePort(name: "http", port: port, targetPort: 8080, protocol: "TCP", nodePort: nodePort)], selector: ["app": name],
                               type: nodePort == nil ? "ClusterIP" : "NodePort")
        spec.clusterIP = clusterIP
        if affinity {
            spec.sessionAffinity = "ClientIP"
            spec.sessionAffinityConfig = SessionAffinityConfig(timeoutSeconds: 60)
        }
        return KubeService(metadata: ObjectMeta(name: name, namespace: "default"), spec: spec)
    }

    static func slice(_ service: String, _ endpoints: [(String, Int32)], ready: Bool = true) -> EndpointSlice {
        var slice = EndpointSlice(metadata: ObjectMeta(name: "\(service)-x", namespace: "default", labels: [EndpointSlice.serviceNameLabel: service]),
                                  endpoints: endpoints.map { Endpoint(addresses: [$0.0], conditions: EndpointConditions(ready: ready), nodeName: "pi") },
                                  ports: [EndpointPort(name: "http", port: endpoints.first?.1 ?? 8080, protocol: "TCP")])
        slice.addressType = "IPv4"
        return slice
    }

    static func ruleset(_ services: [KubeService], _ slices: [EndpointSlice]) -> ProxyRuleset {
        ProxyRuleset.build(ProxiedServicePort.build(services: services, slices: slices, nodeName: "pi"))
    }

    @Test(.enabled(if: ready, skipReason))
    func incrementalTransactionsEndWhereReplacingTheTableWould() throws {
        let incremental = try Namespace()
        let full = try Namespace()
        var proxy = NFTablesProxy(nft: incremental.nft)
        var generator = SeededGenerator(seed: 7)
        for step in 0..<40 {
            // A changing cluster: services come and go, gain and lose endpoints, node ports and affinity.
            var services: [KubeService] = []
            var slices: [EndpointSlice] = []
            for index in 0..<6 where Bool.random(using: &generator) {
                let name = "s\(index)"
                services.append(Self.service(name, clusterIP: "10.43.0.\(10 + index)", nodePort: Bool.random(using: &generator) ? Int32(30000 + index) : nil,
                                             affinity: Bool.random(using: &generator)))
                let count = Int.random(in: 0...3, using: &generator)
                slices.append(Self.slice(name, (0..<count).map { ("10.42.0.\(2 + index * 4 + $0)", 8080) }, ready: Bool.random(using: &generator) || count < 2))
            }
            let desired = Self.ruleset(services, slices)
            try proxy.apply(desired)
            var replaced = NFTablesProxy(nft: full.nft)
            try replaced.apply(desired)
            #expect(try incremental.table() == full.table(), "step \(step)")
        }
    }

    @Test(.enabled(if: ready, skipReason))
    func createDeleteCyclesLeaveNoRuleOrElement() throws {
        let namespace = try Namespace()
        var proxy = NFTablesProxy(nft: namespace.nft)
        try proxy.apply(ProxyRuleset())
        let empty = try namespace.table()
        for cycle in 0..<100 {
            let name = "c\(cycle % 7)"
            let service = Self.service(name, clusterIP: "10.43.1.\(cycle % 200 + 1)", nodePort: 30000 + Int32(cycle % 50), affinity: cycle % 2 == 0)
            try proxy.apply(Self.ruleset([service], [Self.slice(name, [("10.42.1.2", 8080), ("10.42.1.3", 8080), ("10.42.1.4", 8080)])]))
            try proxy.apply(ProxyRuleset())
        }
        #expect(try namespace.table() == empty)
        let listing = try namespace.run("nft list table ip \(ProxyRuleset.table)").output
        #expect(!listing.contains("svc-") && !listing.contains("ep-") && !listing.contains("aff-") && !listing.contains("elements"), "\(listing)")
    }

    @Test(.enabled(if: ready && IPTablesProxy.find() != nil, skipReason), arguments: ["nftables", "iptables"])
    func connectionsReachEndpointsAndServicesWithoutEndpointsRefuse(backendName: String) throws {
        let namespace = try Namespace()
        // Two "pods" on local addresses of a link, each serving its own name.
        let setup = try namespace.run("""
            ip link set lo up && ip link add v0 type veth peer name v1 && ip addr add 10.99.0.2/24 dev v0 && ip addr add 10.99.0.3/24 dev v0 \
            && ip link set v0 up && ip link set v1 up && ip route add default dev v0
            """)
        try #require(setup.status == 0, "\(setup.output)")
        var servers: [SpawnedProcess] = []
        defer { for server in servers { server.signal(SIGKILL); server.waitUntilExit() } }
        for (index, address) in ["10.99.0.2", "10.99.0.3"].enumerated() {
            let root = NSTemporaryDirectory() + namespace.name + "-www\(index)"
            try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
            try "pod-\(index)\n".write(toFile: root + "/index.html", atomically: true, encoding: .utf8)
            servers.append(try SpawnedProcess("/usr/sbin/ip", ["netns", "exec", namespace.name, "/bin/busybox", "httpd", "-f", "-p", "\(address):8080", "-h", root]))
        }
        Thread.sleep(forTimeInterval: 0.5)
        var proxy = namespace.backend(backendName)
        let services = [Self.service("web", clusterIP: "10.43.7.7", nodePort: 30080), Self.service("sticky", clusterIP: "10.43.7.8", affinity: true),
                        Self.service("empty", clusterIP: "10.43.7.9")]
        let endpoints = [("10.99.0.2", Int32(8080)), ("10.99.0.3", Int32(8080))]
        func program(_ slices: [EndpointSlice]) throws { try proxy.apply(ProxiedServicePort.build(services: services, slices: slices, nodeName: "pi")) }
        try program([Self.slice("web", endpoints), Self.slice("sticky", endpoints)])

        func fetch(_ url: String) throws -> (status: Int32, output: String) {
            try namespace.run("curl -sS -m 5 \(url) 2>&1")
        }
        var seen = Set<String>()
        for _ in 0..<40 where seen.count < 2 { seen.insert(try fetch("http://10.43.7.7/").output.trimmingCharacters(in: .whitespacesAndNewlines)) }
        #expect(seen == ["pod-0", "pod-1"], "\(seen)")
        // The node port on the node's own address.
        #expect(try fetch("http://10.99.0.2:30080/").output.hasPrefix("pod-"))
        // Client affinity: one client, one endpoint.
        let sticky = try (0..<10).map { _ in try fetch("http://10.43.7.8/").output }
        #expect(Set(sticky).count == 1 && sticky[0].hasPrefix("pod-"), "\(sticky)")
        // No endpoints: refused at once, not left to time out.
        func refusal(_ url: String) throws -> String { try namespace.run("curl -sS -v -m 5 \(url) 2>&1").output }
        let refused = try refusal("http://10.43.7.9/")
        #expect(refused.contains("Connection refused"), "\(refused)")
        // Endpoints that are not ready take no traffic (here: none left, so refused).
        try program([Self.slice("web", endpoints, ready: false)])
        #expect(try refusal("http://10.43.7.7/").contains("Connection refused"))
        // Services gone: nothing of theirs is left.
        try proxy.apply([])
        let left = backendName == "iptables" ? try namespace.run("iptables -t nat -S; iptables -S").output : try namespace.run("nft list table ip \(ProxyRuleset.table)").output
        #expect(!left.contains("IOTKUBE-SVC-") && !left.contains("IOTKUBE-SEP-") && !left.contains("svc-") && !left.contains("REJECT") && !left.contains("elements"), "\(left)")
    }
}
