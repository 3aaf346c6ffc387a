import ArgumentParser
import KubeModel
import PodNetwork
import SystemSupport

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// `iotkube-agent bench …`: measurements the benchmark harness runs (hidden from help).
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "Measurements for the benchmark harness.", shouldDisplay: false,
        subcommands: [BenchServiceRulesCommand.self])
}

/// Programs N services × M endpoints with nftables (the whole table, then one endpoint changed,
/// then one service added) and with iptables-restore (the same rules, then the same change,
/// each a full restore), printing one JSON object of milliseconds and bytes. Touches the
/// current network namespace: run it under `unshare -n`.
struct BenchServiceRulesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "service-rules", abstract: "Time programming service rules (run under unshare -n).")

    @Option(help: "Services to program.")
    var services = 1000

    @Option(help: "Endpoints per service.")
    var endpoints = 3

    @Option(help: "Single changes timed (the median is printed).")
    var rounds = 9

    func run() throws {
        guard (1...20_000).contains(services), (1...100).contains(endpoints), (1...1000).contains(rounds) else {
            throw ValidationError("--services 1-20000, --endpoints 1-100, --rounds 1-1000")
        }
        guard let nft = NFTablesProxy.find(), let tools = IPTablesProxy.find() else { throw ValidationError("needs nft and iptables-restore") }
        var ports = (0..<services).map { Self.port(index: $0, endpoints: endpoints, variant: 0) }
        var nftables = NFTablesProxy(nft: nft)
        var iptables = IPTablesProxy(restore: tools.restore, iptables: tools.iptables)
        let (nftFull, nftFullBytes) = try Self.timed { try nftables.apply(ProxyRuleset.build(ports)) }
        let (iptFull, iptFullBytes) = try Self.timed { try iptables.apply(ports) }
        var nftChanges: [Double] = [], iptChanges: [Double] = [], nftAdds: [Double] = []
        var nftChangeBytes = 0, iptChangeBytes = 0
        for round in 1...rounds {
            // One endpoint of one service moves (a pod replaced).
            let index = (round * 7919) % services
            ports[index] = Self.port(index: index, endpoints: endpoints, variant: round)
            let (nftTime, nftBytes) = try Self.timed { try nftables.apply(ProxyRuleset.build(ports)) }
            let (iptTime, iptBytes) = try Self.timed { try iptables.apply(ports) }
            nftChanges.append(nftTime)
            iptChanges.append(iptTime)
            nftChangeBytes = nftBytes
            iptChangeBytes = iptBytes
            // One service added (nftables only: iptables rewrites everything either way).
            let added = ports + [Self.port(index: services + round, endpoints: endpoints, variant: 0)]
            nftAdds.append(try Self.timed { try nftables.apply(ProxyRuleset.build(added)) }.0)
        }
        func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
        let fields: [(String, String)] = [
            ("services", "\(services)"), ("endpoints", "\(endpoints)"),
            ("nft_full_ms", Self.format(nftFull)), ("nft_full_bytes", "\(nftFullBytes)"),
            ("nft_change_ms", Self.format(median(nftChanges))), ("nft_change_bytes", "\(nftChangeBytes)"),
            ("nft_add_ms", Self.format(median(nftAdds))),
            ("iptables_full_ms", Self.format(iptFull)), ("iptables_full_bytes", "\(iptFullBytes)"),
            ("iptables_change_ms", Self.format(median(iptChanges))), ("iptables_change_bytes", "\(iptChangeBytes)"),
        ]
        print("{" + fields.map { "\"\($0.0)\": \($0.1)" }.joined(separator: ", ") + "}")
    }

    /// Service `index`: a cluster address, a node port, `endpoints` pod addresses (`variant` moves the first).
    static func port(index: Int, endpoints: Int, variant: Int) -> ProxiedServicePort {
        let address = IPv4Network.format(0x0A2B_0000 + UInt32(index + 10))
        let pods = (0..<endpoints).map { ProxyEndpoint(address: IPv4Network.format(0x0A2A_0000 + UInt32((index * endpoints + $0) % 60000 + 2 + ($0 == 0 ? variant * 65536 : 0))), port: 8080) }
        return ProxiedServicePort(namespace: "bench", name: "s\(index)", portName: "http", transport: "tcp", clusterIP: address, port: 80,
                                  nodePort: index < 2000 ? Int32(30000 + index) : nil, externalIPs: [], affinitySeconds: nil,
                                  clusterEndpoints: pods, externalEndpoints: pods, externalLocal: false)
    }

    static func timed<T>(_ body: () throws -> T) throws -> (Double, T) {
        var start = timespec(), end = timespec()
        clock_gettime(CLOCK_MONOTONIC, &start)
        let value = try body()
        clock_gettime(CLOCK_MONOTONIC, &end)
        return (Double(end.tv_sec - start.tv_sec) * 1000 + Double(end.tv_nsec - start.tv_nsec) / 1_000_000, value)
    }

    static func format(_ milliseconds: Double) -> String {
        let tenths = Int((milliseconds * 10).rounded())
        return "\(tenths / 10).\(tenths % 10)"
    }
}
