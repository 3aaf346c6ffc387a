import NodeCrypto

/// The per-service part of the proxy's nftables table: chains with their rules, client
/// affinity sets, and the elements of the dispatch maps. Two rulesets give the transaction
/// that turns one into the other, so a change rewrites only what changed.
public struct ProxyRuleset: Sendable, Equatable {
    public static let table = "iotkube-proxy"

    /// Chain name → its rules, in order.
    public var chains: [String: [String]] = [:]
    /// Affinity set name → timeout in seconds.
    public var affinitySets: [String: Int32] = [:]
    /// Map name → element lines (`key : verdict`).
    public var elements: [String: Set<String>] = [:]

    public init() {}

    /// The fixed part: dispatch maps, the hooks, masquerading and rejection of services
    /// without endpoints (as kube-proxy's nftables mode lays them out).
    static let base = """
        table ip \(table) {
        \tmap service-ips { type ipv4_addr . inet_proto . inet_service : verdict; }
        \tmap service-nodeports { type inet_proto . inet_service : verdict; }
        \tmap no-endpoint-services { type ipv4_addr . inet_proto . inet_service : verdict; }
        \tmap no-endpoint-nodeports { type inet_proto . inet_service : verdict; }
        \tchain reject-chain { reject; }
        \tchain endpoints-check {
        \t\tip daddr . meta l4proto . th dport vmap @no-endpoint-services;
        \t\tfib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @no-endpoint-nodeports;
        \t}
        \tchain filter-input { type filter hook input priority -110; policy accept; ct state new jump endpoints-check; }
        \tchain filter-forward { type filter hook forward priority -110; policy accept; ct state new jump endpoints-check; }
        \tchain filter-output { type filter hook output priority -110; policy accept; ct state new jump endpoints-check; }
        \tchain mark-for-masquerade { meta mark set meta mark | 0x4000; }
        \tchain masquerading {
        \t\tmeta mark & 0x4000 == 0 return;
        \t\tmeta mark set meta mark ^ 0x4000;
        \t\tmasquerade fully-random;
        \t}
        \tchain services {
        \t\tip daddr . meta l4proto . th dport vmap @service-ips;
        \t\tfib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @service-nodeports;
        \t}
        \tchain nat-prerouting { type nat hook prerouting priority dstnat; policy accept; jump services; }
        \tchain nat-output { type nat hook output priority -100; policy accept; jump services; }
        \tchain nat-postrouting { type nat hook postrouting priority srcnat; policy accept; jump masquerading; }
        }

        """

    /// The rules for `ports`. One key of a map (an address and port, a node port) goes to the
    /// first service port that claims it, cluster addresses before node ports, in key order: two
    /// services claiming one (possible from a hostile or buggy API) never make the kernel refuse
    /// the whole transaction, and one never takes over the other's.
    public static func build(_ ports: [ProxiedServicePort]) -> ProxyRuleset {
        var ruleset = ProxyRuleset()
        var claimedKeys = Set<String>()
        var claimedNodePorts = Set<String>()
        var chainOwners: [String: String] = [:]
        for port in ports {
            let hash = Self.hash(port.key)
            // A name two keys share (a hash collision, however unlikely) is given to the first.
            guard chainOwners["svc-\(hash)", default: port.key] == port.key else { continue }
            chainOwners["svc-\(hash)"] = port.key
            let clusterKey = "\(port.clusterIP) . \(port.transport) . \(port.port)"
            guard claimedKeys.insert(clusterKey).inserted else { continue }
            let serviceChain = "svc-\(hash)"
            let externalChain = "ext-\(hash)"
            let transport = port.transport
            var endpointChains: [ProxyEndpoint: String] = [:]
            for endpoint in Set(port.clusterEndpoints + port.externalEndpoints) {
                let chain = "ep-\(Self.hash("\(port.key)@\(endpoint.address):\(endpoint.port)"))"
                endpointChains[endpoint] = chain
                var rules = ["ip saddr \(endpoint.address) jump mark-for-masquerade"]  // a pod reaching itself (hairpin)
                if let seconds = port.affinitySeconds {
                    let set = "aff-\(chain.dropFirst(3))-\(seconds)"
                    ruleset.affinitySets[set] = seconds
                    rules.append("update @\(set) { ip saddr }")
                }
                rules.append("meta l4proto \(transport) dnat to \(endpoint.address):\(endpoint.port)")
                ruleset.chains[chain] = rules
            }
            func balance(_ endpoints: [ProxyEndpoint]) -> [String] {
                var rules: [String] = []
                if port.affinitySeconds != nil {
                    for endpoint in endpoints {
                        guard let chain = endpointChains[endpoint] else { continue }
                        rules.append("ip saddr @aff-\(chain.dropFirst(3))-\(port.affinitySeconds ?? 0) goto \(chain)")
                    }
                }
                let targets = endpoints.enumerated().compactMap { index, endpoint in endpointChains[endpoint].map { "\(index) : goto \($0)" } }
                rules.append("numgen random mod \(endpoints.count) vmap { \(targets.joined(separator: ", ")) }")
                return rules
            }
            if port.clusterEndpoints.isEmpty {
                ruleset.elements["no-endpoint-services", default: []].insert("\(clusterKey) : goto reject-chain")
            } else {
                // Traffic from the host itself is masqueraded (its source may be any of its addresses).
                ruleset.chains[serviceChain] = ["fib saddr type local jump mark-for-masquerade"] + balance(port.clusterEndpoints)
                ruleset.elements["service-ips", default: []].insert("\(clusterKey) : goto \(serviceChain)")
            }
            let nodePort = port.nodePort.flatMap { claimedNodePorts.insert("\(transport) . \($0)").inserted ? $0 : nil }
            let externalIPs = port.externalIPs.filter { claimedKeys.insert("\($0) . \(transport) . \(port.port)").inserted }
            guard nodePort != nil || !externalIPs.isEmpty else { continue }
            if port.externalEndpoints.isEmpty {
                if let nodePort { ruleset.elements["no-endpoint-nodeports", default: []].insert("\(transport) . \(nodePort) : goto reject-chain") }
                for address in externalIPs {
                    ruleset.elements["no-endpoint-services", default: []].insert("\(address) . \(transport) . \(port.port) : goto reject-chain")
                }
                continue
            }
            // Node port traffic is masqueraded unless it must keep its client address (Local).
            ruleset.chains[externalChain] = (port.externalLocal ? [] : ["jump mark-for-masquerade"]) + balance(port.externalEndpoints)
            if let nodePort { ruleset.elements["service-nodeports", default: []].insert("\(transport) . \(nodePort) : goto \(externalChain)") }
            for address in externalIPs {
                ruleset.elements["service-ips", default: []].insert("\(address) . \(transport) . \(port.port) : goto \(externalChain)")
            }
        }
        return ruleset
    }

    /// The nft transaction that turns `old` into `self`; with `old` nil, the whole table
    /// replaced at once (no moment without rules).
    public func transaction(from old: ProxyRuleset?) -> String {
        let table = "ip \(Self.table)"
        var script = ""
        let previous: ProxyRuleset
        if let old {
            previous = old
        } else {
            script += "add table \(table)\ndelete table \(table)\n" + Self.base
            previous = ProxyRuleset()
        }
        // Map elements that go or change first: nothing may point at a chain being deleted.
        for map in Set(previous.elements.keys).union(elements.keys).sorted() {
            let gone = (previous.elements[map] ?? []).subtracting(elements[map] ?? [])
            if !gone.isEmpty { script += "delete element \(table) \(map) { \(gone.map(Self.elementKey).sorted().joined(separator: ", ")) }\n" }
        }
        // Chains that go or change are emptied before any chain or set is deleted (a rule still
        // pointing at one would keep it in use), then refilled after every chain exists.
        let removedChains = Set(previous.chains.keys).subtracting(chains.keys).sorted()
        let changedChains = chains.keys.filter { previous.chains[$0] != nil && previous.chains[$0] != chains[$0] }.sorted()
        for chain in removedChains + changedChains { script += "flush chain \(table) \(chain)\n" }
        for chain in removedChains { script += "delete chain \(table) \(chain)\n" }
        // A set's name holds its timeout, so a set never changes: it goes or comes.
        for set in Set(previous.affinitySets.keys).subtracting(affinitySets.keys).sorted() { script += "delete set \(table) \(set)\n" }
        for (set, seconds) in affinitySets.sorted(by: { $0.key < $1.key }) where previous.affinitySets[set] == nil {
            script += "add set \(table) \(set) { type ipv4_addr; flags dynamic,timeout; timeout \(seconds)s; }\n"
        }
        let newChains = Set(chains.keys).subtracting(previous.chains.keys).sorted()
        for chain in newChains { script += "add chain \(table) \(chain)\n" }
        for chain in (newChains + changedChains).sorted() {
            for rule in chains[chain] ?? [] { script += "add rule \(table) \(chain) \(rule)\n" }
        }
        for map in elements.keys.sorted() {
            let added = (elements[map] ?? []).subtracting(previous.elements[map] ?? [])
            if !added.isEmpty { script += "add element \(table) \(map) { \(added.sorted().joined(separator: ", ")) }\n" }
        }
        return script
    }

    /// The key part of a map element (`a . b . c : verdict` → `a . b . c`), as deletes name it.
    static func elementKey(_ element: String) -> String {
        let parts = element.split(separator: " : ", maxSplits: 1, omittingEmptySubsequences: false)
        return String(parts.first ?? Substring(element))
    }

    /// A stable 16-character name part: the first 80 bits of SHA-256 in base32 (as kube-proxy
    /// names its chains), so no one can craft a key whose chain is another service's.
    static func hash(_ text: String) -> String {
        let digest = StreamingDigest.hash(.sha256, Array(text.utf8)).prefix(10)
        let alphabet = Array("abcdefghijklmnopqrstuvwxyz234567")
        var result = ""
        var buffer: UInt32 = 0
        var bits = 0
        for byte in digest {
            buffer = buffer << 8 | UInt32(byte)
            bits += 8
            while bits >= 5 {
                bits -= 5
                result.append(alphabet[Int(buffer >> UInt32(bits) & 31)])
            }
        }
        return result
    }
}
