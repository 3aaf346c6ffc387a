import SystemSupport

/// The service rules as kube-proxy's iptables mode writes them, for nodes without nftables:
/// the whole rule set in one `iptables-restore --noflush` at every change (iptables cannot
/// change a chain's rules in place by content), stale chains deleted. Also the peer the
/// nftables transactions are measured against.
public struct IPTablesProxy: Sendable {
    public let restore: String
    public let iptables: String
    /// The per-service chains the last applied rules made (deleted when no longer needed).
    public private(set) var chains: Set<String>?
    private var jumpsInstalled = false
    /// The restore input last applied (an unchanged rule set is not restored again).
    private var lastText: String?

    public init(restore: String, iptables: String) {
        self.restore = restore
        self.iptables = iptables
    }

    /// `iptables-restore` and `iptables`, if installed.
    public static func find() -> (restore: String, iptables: String)? {
        for directory in ["/usr/sbin", "/sbin", "/usr/bin"] where FileTree.exists(directory + "/iptables-restore") && FileTree.exists(directory + "/iptables") {
            return (directory + "/iptables-restore", directory + "/iptables")
        }
        return nil
    }

    static let services = "IOTKUBE-SERVICES"
    static let nodePorts = "IOTKUBE-NODEPORTS"
    static let postrouting = "IOTKUBE-POSTROUTING"
    static let markMasquerade = "IOTKUBE-MARK-MASQ"
    static let filterServices = "IOTKUBE-NO-ENDPOINTS"

    /// The restore input for `ports`, and the per-service chains it makes.
    public static func render(_ ports: [ProxiedServicePort], removing stale: Set<String> = []) -> (text: String, chains: Set<String>) {
        var declarations = [":\(services) - [0:0]", ":\(nodePorts) - [0:0]", ":\(postrouting) - [0:0]", ":\(markMasquerade) - [0:0]"]
        var rules = [
            "-A \(postrouting) -m mark ! --mark 0x4000/0x4000 -j RETURN",
            "-A \(postrouting) -j MARK --xor-mark 0x4000",
            "-A \(postrouting) -j MASQUERADE --random-fully",
            "-A \(markMasquerade) -j MARK --or-mark 0x4000",
        ]
        var filter: [String] = []
        var chains = Set<String>()
        var serviceRules: [String] = []
        // One address and port, or node port, to the first service port claiming it (as the nftables rules).
        var claimedKeys = Set<String>()
        var claimedNodePorts = Set<String>()
        for port in ports {
            let hash = ProxyRuleset.hash(port.key)
            guard claimedKeys.insert("\(port.clusterIP) \(port.transport) \(port.port)").inserted, !chains.contains("IOTKUBE-SVC-\(hash.uppercased())") else { continue }
            let transport = port.transport
            var endpointChains: [ProxyEndpoint: String] = [:]
            for endpoint in Set(port.clusterEndpoints + port.externalEndpoints).sorted() {
                let chain = "IOTKUBE-SEP-\(ProxyRuleset.hash("\(port.key)@\(endpoint.address):\(endpoint.port)").uppercased())"
                endpointChains[endpoint] = chain
                chains.insert(chain)
                declarations.append(":\(chain) - [0:0]")
                rules.append("-A \(chain) -s \(endpoint.address)/32 -j \(markMasquerade)")
                if port.affinitySeconds != nil {
                    rules.append("-A \(chain) -p \(transport) -m recent --name \(chain) --set -j DNAT --to-destination \(endpoint.address):\(endpoint.port)")
                } else {
                    rules.append("-A \(chain) -p \(transport) -j DNAT --to-destination \(endpoint.address):\(endpoint.port)")
                }
            }
            func balance(_ chain: String, _ endpoints: [ProxyEndpoint]) {
                if let seconds = port.affinitySeconds {
                    for endpoint in endpoints {
                        guard let target = endpointChains[endpoint] else { continue }
                        rules.append("-A \(chain) -m recent --name \(target) --rcheck --seconds \(seconds) --reap -j \(target)")
                    }
                }
                for (index, endpoint) in endpoints.enumerated() {
                    guard let target = endpointChains[endpoint] else { continue }
                    let remaining = endpoints.count - index
                    if remaining > 1 {
                        rules.append("-A \(chain) -m statistic --mode random --probability \(probability(1, remaining)) -j \(target)")
                    } else {
                        rules.append("-A \(chain) -j \(target)")
                    }
                }
            }
            let serviceChain = "IOTKUBE-SVC-\(hash.uppercased())"
            let externalChain = "IOTKUBE-EXT-\(hash.uppercased())"
            if port.clusterEndpoints.isEmpty {
                filter.append("-A \(filterServices) -d \(port.clusterIP)/32 -p \(transport) --dport \(port.port) -j REJECT")
            } else {
                chains.insert(serviceChain)
                declarations.append(":\(serviceChain) - [0:0]")
                rules.append("-A \(serviceChain) -m addrtype --src-type LOCAL -j \(markMasquerade)")
                balance(serviceChain, port.clusterEndpoints)
                serviceRules.append("-A \(services) -d \(port.clusterIP)/32 -p \(transport) --dport \(port.port) -j \(serviceChain)")
            }
            let nodePort = port.nodePort.flatMap { claimedNodePorts.insert("\(transport) \($0)").inserted ? $0 : nil }
            let externalIPs = port.externalIPs.filter { claimedKeys.insert("\($0) \(transport) \(port.port)").inserted }
            guard nodePort != nil || !externalIPs.isEmpty else { continue }
            if port.externalEndpoints.isEmpty {
                if let nodePort { filter.append("-A \(filterServices) ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -p \(transport) --dport \(nodePort) -j REJECT") }
                for address in externalIPs { filter.append("-A \(filterServices) -d \(address)/32 -p \(transport) --dport \(port.port) -j REJECT") }
                continue
            }
            chains.insert(externalChain)
            declarations.append(":\(externalChain) - [0:0]")
            if !port.externalLocal { rules.append("-A \(externalChain) -j \(markMasquerade)") }
            balance(externalChain, port.externalEndpoints)
            if let nodePort { rules.append("-A \(nodePorts) -p \(transport) --dport \(nodePort) -j \(externalChain)") }
            for address in externalIPs { serviceRules.append("-A \(services) -d \(address)/32 -p \(transport) --dport \(port.port) -j \(externalChain)") }
        }
        // Node ports on the node's addresses, not loopback (as the nftables rules; 127/8 is not routed to pods).
        serviceRules.append("-A \(services) ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j \(nodePorts)")
        let deletions = stale.subtracting(chains).sorted()
        var text = "*nat\n" + (declarations + deletions.map { ":\($0) - [0:0]" }).joined(separator: "\n") + "\n"
        text += (serviceRules + rules).joined(separator: "\n") + "\n"
        text += deletions.map { "-X \($0)" }.joined(separator: "\n") + (deletions.isEmpty ? "" : "\n")
        text += "COMMIT\n*filter\n:\(filterServices) - [0:0]\n" + filter.joined(separator: "\n") + (filter.isEmpty ? "" : "\n") + "COMMIT\n"
        return (text, chains)
    }

    /// `1/n` with kube-proxy's precision (10 decimals).
    static func probability(_ numerator: Int, _ denominator: Int) -> String {
        let scaled = (Int64(numerator) * 10_000_000_000 + Int64(denominator) / 2) / Int64(denominator)
        let text = String(scaled)
        return "0." + String(repeating: "0", count: max(0, 10 - text.count)) + text
    }

    /// Rewrites the rules for `ports`; returns the bytes of restore input.
    @discardableResult
    public mutating func apply(_ ports: [ProxiedServicePort]) throws(NetworkError) -> Int {
        if !jumpsInstalled {
            try installJumps()
            jumpsInstalled = true
        }
        let stale: Set<String>
        if let chains { stale = chains } else { stale = try existingChains() }
        let (text, made) = Self.render(ports, removing: stale)
        if text == lastText { return 0 }
        chains = nil
        lastText = nil
        let outcome = try captured(restore, ["-w", "5", "--noflush"], input: Array(text.utf8), timeoutSeconds: 120)
        guard outcome.status == 0 else {
            throw NetworkError("iptables-restore refused the service rules (exit \(outcome.status)): \(String(decoding: outcome.errorOutput.prefix(2000), as: UTF8.self))")
        }
        chains = made
        lastText = text
        return text.utf8.count
    }

    /// The per-service chains present in the kernel (from an earlier run).
    private func existingChains() throws(NetworkError) -> Set<String> {
        let outcome = try captured(iptables, ["-w", "5", "-t", "nat", "-S"], timeoutSeconds: 60)
        var found = Set<String>()
        for line in String(decoding: outcome.output, as: UTF8.self).split(separator: "\n") where line.hasPrefix("-N IOTKUBE-") {
            let name = String(line.dropFirst(3))
            if name.hasPrefix("IOTKUBE-SVC-") || name.hasPrefix("IOTKUBE-SEP-") || name.hasPrefix("IOTKUBE-EXT-") { found.insert(name) }
        }
        return found
    }

    /// The jumps from the built-in chains into the proxy's, added once when missing.
    private func installJumps() throws(NetworkError) {
        let base = "*nat\n:\(Self.services) - [0:0]\n:\(Self.nodePorts) - [0:0]\n:\(Self.postrouting) - [0:0]\n:\(Self.markMasquerade) - [0:0]\nCOMMIT\n*filter\n:\(Self.filterServices) - [0:0]\nCOMMIT\n"
        _ = try captured(restore, ["-w", "5", "--noflush"], input: Array(base.utf8), timeoutSeconds: 60)
        for (table, rule) in Self.jumps {
            if try captured(iptables, ["-w", "5", "-t", table, "-C"] + rule, timeoutSeconds: 30).status == 0 { continue }
            let added = try captured(iptables, ["-w", "5", "-t", table, "-I"] + rule, timeoutSeconds: 30)
            guard added.status == 0 else {
                throw NetworkError("iptables -t \(table) -I \(rule.joined(separator: " ")): \(String(decoding: added.errorOutput.prefix(500), as: UTF8.self))")
            }
        }
    }

    /// The jumps from the built-in chains into the proxy's: (table, rule).
    static let jumps: [(String, [String])] = [
        ("nat", ["PREROUTING", "-m", "comment", "--comment", "iotkube service portals", "-j", services]),
        ("nat", ["OUTPUT", "-m", "comment", "--comment", "iotkube service portals", "-j", services]),
        ("nat", ["POSTROUTING", "-m", "comment", "--comment", "iotkube service masquerade", "-j", postrouting]),
        ("filter", ["INPUT", "-m", "conntrack", "--ctstate", "NEW", "-j", filterServices]),
        ("filter", ["FORWARD", "-m", "conntrack", "--ctstate", "NEW", "-j", filterServices]),
        ("filter", ["OUTPUT", "-m", "conntrack", "--ctstate", "NEW", "-j", filterServices]),
    ]

    /// Removes the jumps and every chain (what `reset` does on such a node).
    public static func remove(restore: String, iptables: String) {
        for (table, rule) in jumps {
            while (try? captured(iptables, ["-w", "5", "-t", table, "-D"] + rule, timeoutSeconds: 30).status) == 0 {}
        }
        guard let listing = try? captured(iptables, ["-w", "5", "-t", "nat", "-S"], timeoutSeconds: 60) else { return }
        let chains = String(decoding: listing.output, as: UTF8.self).split(separator: "\n").filter { $0.hasPrefix("-N IOTKUBE-") && !$0.hasPrefix("-N IOTKUBE-EG-") }.map { String($0.dropFirst(3)) }
        let text = "*nat\n" + chains.map { ":\($0) - [0:0]\n" }.joined() + chains.map { "-X \($0)\n" }.joined() + "COMMIT\n*filter\n:\(filterServices) - [0:0]\n-X \(filterServices)\nCOMMIT\n"
        _ = try? captured(restore, ["-w", "5", "--noflush"], input: Array(text.utf8), timeoutSeconds: 60)
    }
}
