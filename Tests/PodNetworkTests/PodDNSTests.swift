import IotkubeTestSupport
import KubeModel
import PodNetwork
import Testing

/// resolv.conf and hosts files as the kubelet writes them, per dnsPolicy.
@Suite(.ownThread) struct PodDNSTests {
    static let nodeResolvConf = """
        # written by the board's DHCP client
        nameserver 192.168.1.1
        nameserver 1.1.1.1
        search lan home.example
        options edns0 timeout:2
        """

    func pod(_ change: (inout PodSpec) -> Void = { _ in }) -> Pod {
        var spec = PodSpec()
        change(&spec)
        return Pod(metadata: ObjectMeta(name: "sensor-reader", namespace: "edge"), spec: spec)
    }

    @Test func clusterFirstUsesTheClusterDNSAndSearchPath() {
        let dns = PodDNS(clusterDNS: ["10.43.0.10"], clusterDomain: "cluster.local", hostResolvConf: Self.nodeResolvConf)
        let result = dns.resolvConf(for: pod())
        #expect(result.text == """
            nameserver 10.43.0.10
            search edge.svc.cluster.local svc.cluster.local cluster.local lan home.example
            options ndots:5

            """)
        #expect(result.warning == nil)
    }

    @Test func withoutAClusterDNSClusterFirstFallsBackToTheNodeWithAWarning() {
        let dns = PodDNS(hostResolvConf: Self.nodeResolvConf)
        let result = dns.resolvConf(for: pod())
        #expect(result.text == "nameserver 192.168.1.1\nnameserver 1.1.1.1\nsearch lan home.example\noptions edns0 timeout:2\n")
        #expect(result.warning?.contains("pod edge/sensor-reader: ClusterFirst DNS without a cluster DNS") == true)
    }

    @Test func hostNetworkPodsUseTheNodeUnlessClusterFirstWithHostNet() {
        let dns = PodDNS(clusterDNS: ["10.43.0.10"], hostResolvConf: Self.nodeResolvConf)
        #expect(dns.resolvConf(for: pod { $0.hostNetwork = true }).text.hasPrefix("nameserver 192.168.1.1\n"))
        #expect(dns.resolvConf(for: pod { $0.hostNetwork = true; $0.dnsPolicy = .clusterFirstWithHostNet }).text.hasPrefix("nameserver 10.43.0.10\n"))
    }

    @Test func noneTakesOnlyDNSConfigAndOptionsOverride() {
        let dns = PodDNS(clusterDNS: ["10.43.0.10"], hostResolvConf: Self.nodeResolvConf)
        let config = PodDNSConfig(nameservers: ["9.9.9.9", "9.9.9.9"], searches: ["plant.example"], options: [.init(name: "ndots", value: "2"), .init(name: "rotate")])
        #expect(dns.resolvConf(for: pod { $0.dnsPolicy = DNSPolicy.none; $0.dnsConfig = config }).text
            == "nameserver 9.9.9.9\nsearch plant.example\noptions ndots:2 rotate\n")
        // Merged into ClusterFirst: ndots replaced, not repeated.
        #expect(dns.resolvConf(for: pod { $0.dnsConfig = config }).text.hasSuffix("options ndots:2 rotate\n"))
    }

    @Test func limitsAreAppliedWithAWarning() {
        let dns = PodDNS(hostResolvConf: "")
        let config = PodDNSConfig(nameservers: ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"], searches: (1...40).map { "d\($0).example" })
        let result = dns.resolvConf(for: pod { $0.dnsPolicy = DNSPolicy.none; $0.dnsConfig = config })
        #expect(!result.text.contains("10.0.0.4") && result.text.contains("10.0.0.3"))
        #expect(result.text.contains("d32.example") && !result.text.contains("d33.example"))
        #expect(result.warning != nil)
    }

    @Test func hostsFileNamesThePodAndItsAliases() {
        let dns = PodDNS(hostResolvConf: "")
        let plain = dns.hosts(for: pod { $0.hostAliases = [HostAlias(ip: "192.168.1.20", hostnames: ["plc", "plc.local"])] }, podIPs: ["10.244.1.7"], nodeHosts: "")
        #expect(plain.contains("127.0.0.1\tlocalhost\n"))
        #expect(plain.contains("10.244.1.7\tsensor-reader\n"))
        #expect(plain.hasSuffix("# Entries added by HostAliases.\n192.168.1.20\tplc\tplc.local\n"))
        let named = dns.hosts(for: pod { $0.hostname = "reader-0"; $0.subdomain = "readers" }, podIPs: ["10.244.1.8"], nodeHosts: "")
        #expect(named.contains("10.244.1.8\treader-0.readers.edge.svc.cluster.local\treader-0\n"))
        let host = dns.hosts(for: pod { $0.hostNetwork = true }, podIPs: ["192.168.1.5"], nodeHosts: "127.0.0.1 localhost\n192.168.1.5 board")
        #expect(host == "127.0.0.1 localhost\n192.168.1.5 board\n")
        #expect(PodDNS.hostname(for: Pod(metadata: ObjectMeta(name: String(repeating: "a", count: 62) + "-b"))) == String(repeating: "a", count: 62))
    }
}
