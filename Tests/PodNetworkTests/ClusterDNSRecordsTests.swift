import KubeModel
import PodNetwork
import Testing

/// The cluster DNS's names and messages: what each kind of service answers, and queries a
/// hostile pod could send (pointer loops, overlong names) refused without trouble.
struct ClusterDNSRecordsTests {
    static func query(_ name: String, type: UInt16 = 1, id: UInt16 = 0x1234) -> [UInt8] {
        var bytes: [UInt8] = [UInt8(id >> 8), UInt8(id & 0xFF), 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]
        for label in name.split(separator: ".") { bytes.append(UInt8(label.utf8.count)); bytes += Array(label.utf8) }
        bytes += [0, UInt8(type >> 8), UInt8(type & 0xFF), 0, 1]
        return bytes
    }

    static let records: ClusterDNSRecords = {
        var web = KubeService(metadata: ObjectMeta(name: "web", namespace: "shop"), spec: ServiceSpec(ports: [ServicePort(name: "http", port: 80)], selector: ["app": "web"]))
        web.spec?.clusterIP = "10.43.1.2"
        var database = KubeService(metadata: ObjectMeta(name: "db", namespace: "shop"), spec: ServiceSpec(ports: [ServicePort(name: "pg", port: 5432)], selector: ["app": "db"]))
        database.spec?.clusterIP = "None"
        var outside = KubeService(metadata: ObjectMeta(name: "outside", namespace: "shop"), spec: ServiceSpec(type: "ExternalName"))
        outside.spec?.externalName = "Example.COM"
        var named = Endpoint(addresses: ["10.42.0.5"], conditions: EndpointConditions(ready: true))
        named.hostname = "db-0"
        let slice = EndpointSlice(metadata: ObjectMeta(name: "db-a", namespace: "shop", labels: [EndpointSlice.serviceNameLabel: "db"]),
                                  endpoints: [named, Endpoint(addresses: ["10.42.0.6"], conditions: EndpointConditions(ready: true)),
                                              Endpoint(addresses: ["10.42.0.7"], conditions: EndpointConditions(ready: false))],
                                  ports: [EndpointPort(name: "pg", port: 5432, protocol: "TCP")])
        return ClusterDNSRecords(services: [web, database, outside], slices: [slice], domain: "cluster.local")
    }()

    func answer(_ name: String, _ type: DNSMessage.RecordType = .a) -> (DNSMessage.ResponseCode, [DNSMessage.Answer]) {
        let labels = name.split(separator: ".").map(String.init)
        return Self.records.answer(name: labels, type: type.rawValue)
    }

    @Test func servicesHeadlessEndpointsSRVAndAliases() {
        let base = ["web", "shop", "svc", "cluster", "local"]
        #expect(answer("web.shop.svc.cluster.local") == (.noError, [.a(name: base, address: IPv4Network.parseAddress("10.43.1.2")!, ttl: 5)]))
        // Headless: the ready endpoints; a named one by its hostname, the others by their address.
        let headless = answer("db.shop.svc.cluster.local").1.compactMap { if case .a(_, let address, _) = $0 { IPv4Network.format(address) } else { nil } }
        #expect(headless == ["10.42.0.5", "10.42.0.6"])
        #expect(answer("db-0.db.shop.svc.cluster.local").1.count == 1)
        #expect(answer("10-42-0-6.db.shop.svc.cluster.local").1.count == 1)
        let srv = answer("_pg._tcp.db.shop.svc.cluster.local", .srv).1
        #expect(srv.count == 2)
        #expect(answer("_http._tcp.web.shop.svc.cluster.local", .srv).1 == [.srv(name: ["_http", "_tcp"] + base, priority: 0, weight: 100, port: 80, target: base, ttl: 5)])
        #expect(answer("outside.shop.svc.cluster.local").1 == [.cname(name: ["outside", "shop", "svc", "cluster", "local"], target: ["example", "com"], ttl: 5)])
        #expect(answer("10-42-9-9.shop.pod.cluster.local").1.count == 1)
        // Names that exist answer AAAA with no data; names that do not are NXDOMAIN.
        #expect(answer("web.shop.svc.cluster.local", .aaaa) == (.noError, []))
        #expect(answer("shop.svc.cluster.local") == (.noError, []))
        #expect(answer("nope.shop.svc.cluster.local").0 == .nameError)
        #expect(answer("web.other.svc.cluster.local").0 == .nameError)
        #expect(!Self.records.isCluster(["example", "com"]))
    }

    @Test func responsesEchoTheQuestionAndTruncateWithTC() throws {
        let query = try DNSMessage(query: Self.query("web.shop.svc.cluster.local"))
        #expect(query.name == ["web", "shop", "svc", "cluster", "local"] && query.id == 0x1234 && query.recursionDesired)
        let many = (0..<100).map { DNSMessage.Answer.a(name: query.name, address: UInt32($0), ttl: 5) }
        let response = query.response(code: .noError, answers: many, authoritative: true)
        #expect(response.count <= 512)
        #expect(response[2] & 0x02 != 0, "TC set")
        #expect(response[0] == 0x12 && response[1] == 0x34 && response[2] & 0x80 != 0 && response[2] & 0x04 != 0)
    }

    @Test func hostileQueriesAreRefused() {
        // A compression pointer to itself, and one pointing forward.
        var loop: [UInt8] = [0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xC0, 12, 0, 1, 0, 1]
        #expect(throws: DNSMessage.ParseError.self) { try DNSMessage(query: loop) }
        loop[13] = 40
        #expect(throws: DNSMessage.ParseError.self) { try DNSMessage(query: loop) }
        // A name over 255 bytes, a label type that does not exist, two questions, a response.
        let long = Self.query(Array(repeating: String(repeating: "a", count: 63), count: 5).joined(separator: "."))
        #expect(throws: DNSMessage.ParseError.self) { try DNSMessage(query: long) }
        var badLabel = Self.query("a.b")
        badLabel[12] = 0x80
        #expect(throws: DNSMessage.ParseError.self) { try DNSMessage(query: badLabel) }
        var two = Self.query("a.b")
        two[5] = 2
        #expect(throws: DNSMessage.ParseError.self) { try DNSMessage(query: two) }
        var response = Self.query("a.b")
        response[2] |= 0x80
        #expect(throws: DNSMessage.ParseError.self) { try DNSMessage(query: response) }
        for length in 0..<Self.query("a.b").count {
            _ = try? DNSMessage(query: Array(Self.query("a.b").prefix(length)))  // truncations: an error, never a trap
        }
    }
}
