import Foundation
import IotkubeTestSupport
import KubeModel
import PodNetwork
import Testing

/// What an attack review of the service proxy found, each performed with the real `nft`: objects
/// a hostile or careless tenant (or API server) can make must neither stop the proxy for
/// everyone nor capture traffic that is not theirs.
@Suite(.serialized)
struct ServiceProxyAttackTests {
    typealias Rules = ServiceProxyRulesTests

    @Test(.enabled(if: Rules.ready, Rules.skipReason))
    func duplicateKeysNeitherFailTheTransactionNorTakeOverAService() throws {
        let namespace = try Rules.Namespace()
        var proxy = NFTablesProxy(nft: namespace.nft)
        // Two services claiming one address and port, and two claiming one node port.
        let victim = Rules.service("victim", clusterIP: "10.43.8.1", nodePort: 30111)
        var thief = Rules.service("thief", clusterIP: "10.43.8.1", nodePort: 30111)
        thief.metadata.namespace = "zzz"
        let slices = [Rules.slice("victim", [("10.42.0.2", 8080)]), { var slice = Rules.slice("thief", [("10.42.0.66", 8080)]); slice.metadata.namespace = "zzz"; return slice }()]
        try proxy.apply(Rules.ruleset([victim, thief], slices))
        let listing = try namespace.run("nft list table ip \(ProxyRuleset.table)").output
        #expect(listing.contains("10.42.0.2:8080") && !listing.contains("10.42.0.66"), "\(listing)")
    }

    @Test(.enabled(if: Rules.ready, Rules.skipReason))
    func addressesThatAreNotWhatTheySeemAreNeverProgrammed() throws {
        let namespace = try Rules.Namespace()
        var proxy = NFTablesProxy(nft: namespace.nft)
        var outside = Rules.service("outside", clusterIP: "10.43.9.1")
        outside.spec?.externalIPs = ["192.0.2.1"]  // a tenant claiming an address it does not own
        let services = [Rules.service("octal", clusterIP: "010.43.0.1"), Rules.service("dns", clusterIP: "169.254.20.10"),
                        Rules.service("loop", clusterIP: "10.43.9.2"), Rules.service("reserved", clusterIP: "10.43.9.3", nodePort: 10250),
                        Rules.service("dnsport", clusterIP: "10.43.9.4", nodePort: 53), outside]
        let slices = [Rules.slice("loop", [("127.0.0.1", 22), ("10.42.0.07", 8080)]), Rules.slice("outside", [("10.42.0.9", 8080)]),
                      Rules.slice("reserved", [("10.42.0.9", 8080)]), Rules.slice("dnsport", [("10.42.0.9", 8080)])]
        let ports = ProxiedServicePort.build(services: services, slices: slices, nodeName: "pi", reservedNodePorts: [10250])
        try proxy.apply(ProxyRuleset.build(ports))
        let listing = try namespace.run("nft list table ip \(ProxyRuleset.table)").output
        for absent in ["010.43", "8.43.0.1", "169.254.20.10 .", "127.0.0.1:22", "10.42.0.07", "10.42.0.7", "192.0.2.1", " 10250 ", " 53 "] {
            #expect(!listing.contains(absent), "\(absent) in \(listing)")
        }
        #expect(listing.contains("10.43.9.1 . tcp . 80"))
    }

    /// Bookmarks (no addressType) and kube's `endpoints: null` once ended the proxy's watch.
    @Test func bookmarksAndNullEndpointsDecode() throws {
        let bookmark = #"{"type":"BOOKMARK","object":{"kind":"EndpointSlice","apiVersion":"discovery.k8s.io/v1","metadata":{"resourceVersion":"42"}}}"#
        let event = try KubeJSON.decode(WatchEvent<EndpointSlice>.self, from: Array(bookmark.utf8))
        #expect(event.object?.metadata.resourceVersion == "42")
        let empty = #"{"kind":"EndpointSlice","apiVersion":"discovery.k8s.io/v1","metadata":{"name":"a","namespace":"b"},"addressType":"IPv4","endpoints":null}"#
        #expect(try KubeJSON.decode(EndpointSlice.self, from: Array(empty.utf8)).endpointList.isEmpty)
    }

    @Test func aResolvConfWithAnEmptyOptionIsRead() {
        #expect(PodDNS.nameservers("nameserver 10.0.0.2\noptions : ndots:2\nnameserver 08.8.8.8\n") == ["10.0.0.2", "08.8.8.8"].filter { IPv4Network.parseAddress($0) != nil })
    }
}
