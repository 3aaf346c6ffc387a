import Crypto
import Foundation
import IotkubeTestSupport
import KubeModel
import HTTPServing
import Logging
import Synchronization
import Testing

@testable import ControlPlane

/// Growth from outside is bounded: JSON patches, YAML aliases, objects, the watch history,
/// certificate requests, connections and watches per client. Each is attacked on a real server.
@Suite(.ownThread, .serialized)
struct ResourceLimitTests {
    static let configMap = #"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cm"},"data":{"a":"0123456789abcdef"}}"#
    static let configMaps = "/api/v1/namespaces/default/configmaps"

    @Test(.enabled(if: toolAvailable("curl"), "curl is not installed"))
    func jsonPatchesCannotGrowAnObjectWithoutBound() throws {
        let server = try ServerProcess()
        let api = try APIRequester(server)
        #expect(try api.send("POST", Self.configMaps, body: Self.configMap).code == 201)
        let before = try api.send("GET", "\(Self.configMaps)/cm").body
        func patch(_ operations: [String]) throws -> (code: Int, body: String) {
            try api.send("PATCH", "\(Self.configMaps)/cm", body: "[" + operations.joined(separator: ",") + "]", contentType: "application/json-patch+json")
        }
        // Each `copy` of the annotations into themselves doubles them: 12 copies of 4 KiB are 16 MiB.
        let doubling = [#"{"op":"add","path":"/metadata/annotations","value":{"a":"\#(String(repeating: "x", count: 4096))"}}"#]
            + (0..<12).map { #"{"op":"copy","from":"/metadata/annotations","path":"/metadata/annotations/x\#($0)"}"# }
        let grown = try patch(doubling)
        #expect(grown.code == 413 && grown.body.contains("RequestEntityTooLarge"), "\(grown.code) \(grown.body.prefix(300))")
        let tooMany = try patch(Array(repeating: #"{"op":"test","path":"/kind","value":"ConfigMap"}"#, count: 10_001))
        #expect(tooMany.code == 413 && tooMany.body.contains("10000"), "\(tooMany.code) \(tooMany.body.prefix(300))")
        // Each `add` one level deeper than the last: past 256 levels the patch stops.
        let nesting = (1...300).map { #"{"op":"add","path":"/data\#(String(repeating: "/d", count: $0))","value":{}}"# }
        let deep = try patch([#"{"op":"add","path":"/data","value":{}}"#] + nesting)
        #expect(deep.code == 422 && deep.body.contains("deeper than 256"), "\(deep.code) \(deep.body.prefix(300))")
        // Under the body limit but past the object limit: two 1 MiB values.
        let half = String(repeating: "y", count: 1 << 20)
        #expect(try api.send("PATCH", "\(Self.configMaps)/cm", body: #"{"data":{"c":"\#(half)"}}"#, contentType: "application/merge-patch+json").code == 200)
        let tooBig = try api.send("PATCH", "\(Self.configMaps)/cm", body: #"{"data":{"e":"\#(half)"}}"#, contentType: "application/merge-patch+json")
        #expect(tooBig.code == 413, "\(tooBig.code) \(tooBig.body.prefix(300))")
        let after = try api.send("GET", "\(Self.configMaps)/cm")
        #expect(after.code == 200 && after.body.count < (3 << 19) && !after.body.contains(#""e":"#))
        #expect(!before.isEmpty && server.process.isRunning)
    }

    /// Aliases to anchors nested in anchors build a tree far deeper than the parser's limit.
    static func aliasDepthBomb() -> String {
        let levels = 200
        var yaml = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: deep\nspec:\n  containers: [{name: c, image: busybox}]\n"
        yaml += "x0: &a0 " + String(repeating: "[", count: levels) + "1" + String(repeating: "]", count: levels) + "\n"
        for index in 1..<60 {
            yaml += "x\(index): &a\(index) " + String(repeating: "[", count: levels) + "*a\(index - 1)" + String(repeating: "]", count: levels) + "\n"
        }
        return yaml
    }

    @Test(.enabled(if: toolAvailable("curl"), "curl is not installed"))
    func yamlAliasesCountAgainstTheDepthLimit() throws {
        let server = try ServerProcess()
        let api = try APIRequester(server)
        let bomb = Self.aliasDepthBomb()
        let answer = try api.send("POST", "/api/v1/namespaces/default/pods", body: bomb, contentType: "application/yaml")
        #expect(answer.code == 400 && answer.body.contains("deeper than 256"), "\(answer.code) \(answer.body.prefix(400))")
        #expect(server.process.isRunning)

        let agent = ServerProcess.buildDirectory.appendingPathComponent("iotkube-agent").path
        let file = server.directory.appendingPathComponent("deep.yaml")
        try bomb.write(to: file, atomically: true, encoding: .utf8)
        let checked = try ServerProcess.run(agent, ["check-manifest", file.path])
        #expect(checked.status == 1 && checked.output.contains("deeper than 256"), "\(checked.status) \(checked.output.prefix(400))")
    }

    @Test(.enabled(if: toolAvailable("curl"), "curl is not installed"))
    func theWatchHistoryIsBoundedByBytes() throws {
        let server = try ServerProcess(arguments: ["--watch-cache-bytes", String(1 << 20)])
        let api = try APIRequester(server)
        let first = try api.send("POST", Self.configMaps, body: Self.configMap)
        let firstVersion = try #require(first.body.firstMatch(of: /"resourceVersion":"(\d+)"/)?.1)
        let large = String(repeating: "z", count: 200 << 10)
        for index in 0..<8 {
            let body = #"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"big\#(index)"},"data":{"a":"\#(large)"}}"#
            #expect(try api.send("POST", Self.configMaps, body: body).code == 201)
        }
        // 1.6 MB of changes went through a 1 MiB history: resuming from before them is 410 Gone.
        let old = try api.send("GET", "\(Self.configMaps)?watch=true&resourceVersion=\(firstVersion)&timeoutSeconds=1")
        #expect(old.code == 410 || old.body.contains(#""code":410"#), "\(old.code) \(old.body.prefix(300))")
        let latest = try api.send("GET", Self.configMaps)
        let listVersion = try #require(latest.body.firstMatch(of: /"resourceVersion":"(\d+)"/)?.1)
        let recent = try api.send("GET", "\(Self.configMaps)?watch=true&resourceVersion=\(listVersion)&timeoutSeconds=1")
        #expect(recent.code == 200 && !recent.body.contains("410"), "\(recent.code) \(recent.body.prefix(300))")
    }

    @Test(.enabled(if: toolAvailable("curl"), "curl is not installed"))
    func finishedAndAbandonedCertificateRequestsAreDeleted() throws {
        let server = try ServerProcess(arguments: ["--csr-cleanup-interval", "1"])
        server.stop()
        let path = server.directory.appendingPathComponent("state.db").path
        let authority = try CertificateAuthority.generate(commonName: "test")
        let key = P256.Signing.PrivateKey()
        let expired = try authority.issue(commonName: "system:node:old", organizations: ["system:nodes"], publicKey: .init(key.publicKey),
                                          serverAuth: false, clientAuth: true, validity: -100).serializeAsPEM().pemString
        let hourAgo = Timestamp.now().adding(seconds: -7200).description
        let dayAgo = Timestamp.now().adding(seconds: -25 * 3600).description
        func request(_ name: String, _ status: String) -> String {
            #"{"apiVersion":"certificates.k8s.io/v1","kind":"CertificateSigningRequest","metadata":{"name":"\#(name)"},"#
                + #""spec":{"request":"","signerName":"example.com/x","usages":["client auth"]},"status":\#(status)}"#
        }
        let certificate = Data(expired.utf8).base64EncodedString()
        let requests = [
            "pending-old": (request("pending-old", "{}"), dayAgo),
            "pending-new": (request("pending-new", "{}"), nil),
            "denied-old": (request("denied-old", #"{"conditions":[{"type":"Denied","status":"True","lastUpdateTime":"\#(hourAgo)"}]}"#), nil),
            "denied-new": (request("denied-new", #"{"conditions":[{"type":"Denied","status":"True","lastUpdateTime":"\#(Timestamp.now())"}]}"#), nil),
            "issued-old": (request("issued-old", #"{"conditions":[{"type":"Approved","status":"True","lastUpdateTime":"\#(hourAgo)"}],"certificate":"\#(certificate)"}"#), nil),
            "issued-expired": (request("issued-expired", #"{"conditions":[{"type":"Approved","status":"True","lastUpdateTime":"\#(Timestamp.now())"}],"certificate":"\#(certificate)"}"#), nil),
        ]
        do {
            let store = try ObjectStore(path: path)
            for (name, (body, created)) in requests {
                _ = try store.create(.certificateSigningRequests, namespace: "", name: name, object: try KubeJSON.parse(Array(body.utf8)))
                if let created { try Self.backdate(path: path, name: name, creationTimestamp: created) }
            }
        }
        try server.resume()
        let api = try APIRequester(server)
        var remaining: Set<String> = []
        for _ in 0..<50 {
            let list = try api.send("GET", "/apis/certificates.k8s.io/v1/certificatesigningrequests").body
            remaining = Set(requests.keys.filter { list.contains(#""name":"\#($0)""#) })
            if remaining == ["pending-new", "denied-new"] { break }
            Thread.sleep(forTimeInterval: 0.1)
        }
        #expect(remaining == ["pending-new", "denied-new"])
    }

    /// Rewrites a stored object's creationTimestamp (the store always sets it to now).
    static func backdate(path: String, name: String, creationTimestamp: String) throws {
        let database = try SQLiteDatabase(path: path)
        let select = try database.prepare("SELECT body FROM objects WHERE resource = ? AND name = ?")
        select.bind([.text(ResourceType.certificateSigningRequests.storageKey), .text(name)])
        guard try select.step() else { throw TestFailure("\(name) is not stored") }
        var object = try KubeJSON.parse(select.blob(0))
        select.reset()
        object.set(["metadata", "creationTimestamp"], .string(creationTimestamp))
        try database.prepare("UPDATE objects SET body = ? WHERE resource = ? AND name = ?")
            .run([.blob(KubeJSON.serialize(object)), .text(ResourceType.certificateSigningRequests.storageKey), .text(name)])
    }

    @Test(.enabled(if: toolAvailable("curl"), "curl is not installed"))
    func connectionsPerAddressAreBounded() throws {
        let server = try ServerProcess(arguments: ["--max-connections-per-address", "3"])
        let api = try APIRequester(server)
        // Closed once, by whichever comes first: a second close would hit numbers other
        // threads' pipes have taken since (they then read each other's output).
        var held = (0..<3).map { _ in Self.connect(port: server.port) }
        defer { held.forEach { close($0) } }
        #expect(held.allSatisfy { $0 >= 0 })
        Thread.sleep(forTimeInterval: 0.3)
        let refused = try RobustnessTests.curl(server, api.credentials + ["-i", "https://127.0.0.1:\(server.port)/api/v1/namespaces"]).output
        #expect(refused.contains("HTTP 429") && refused.lowercased().contains("retry-after: 1") && refused.contains("TooManyRequests"), "\(refused.prefix(500))")
        held.forEach { close($0) }
        held = []
        Thread.sleep(forTimeInterval: 0.3)
        #expect(try api.send("GET", "/api/v1/namespaces").code == 200)
    }

    @Test(.enabled(if: toolAvailable("curl"), "curl is not installed"))
    func watchesPerClientAreBounded() throws {
        let server = try ServerProcess(arguments: ["--max-watches-per-client", "2"])
        let api = try APIRequester(server)
        let curl = try #require(ServerProcess.findExecutable("curl"))
        let ca = server.directory.appendingPathComponent("pki/ca.crt").path
        // Two watches held open by curl for 3 s each (curl ends them itself, closing the connection).
        var watchers: [SpawnedProcess] = []
        for index in 0..<2 {
            watchers.append(try SpawnedProcess(curl, ["-sN", "--max-time", "3", "--cacert", ca, "-o", server.directory.appendingPathComponent("watch\(index)").path]
                + api.credentials + ["https://127.0.0.1:\(server.port)/api/v1/pods?watch=true&timeoutSeconds=60"]))
        }
        Thread.sleep(forTimeInterval: 1)
        let third = try api.send("GET", "/api/v1/configmaps?watch=true&timeoutSeconds=1")
        #expect(third.code == 429 && third.body.contains("TooManyRequests"), "\(third.code) \(third.body.prefix(300))")
        #expect(try api.send("GET", "/api/v1/configmaps").code == 200, "plain requests are not watches")
        // Closing a quiet watch frees its slot at once, not at its next event or its timeout.
        let deadline = Date().addingTimeInterval(10)
        while watchers.contains(where: \.isRunning), Date() < deadline { Thread.sleep(forTimeInterval: 0.1) }
        Thread.sleep(forTimeInterval: 0.5)
        #expect(try api.send("GET", "/api/v1/configmaps?watch=true&timeoutSeconds=1").code == 200)
    }

    /// The store holds every Secret: it and its WAL files are owner-only whatever the umask.
    @Test(.enabled(if: toolAvailable("curl"), "curl is not installed"))
    func theStoreIsOwnerOnlyWhateverTheUmask() throws {
        let previous = umask(0o022)
        defer { umask(previous) }
        let server = try ServerProcess()
        let api = try APIRequester(server)
        #expect(try api.send("POST", Self.configMaps, body: Self.configMap).code == 201)
        for suffix in ["", "-wal", "-shm"] {
            let path = server.directory.appendingPathComponent("state.db\(suffix)").path
            let mode = try #require(try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int)
            #expect(mode == 0o600, "state.db\(suffix) has mode \(String(mode, radix: 8))")
        }
    }

    /// A watcher that stops reading is cut off once it lags more than its byte budget behind:
    /// what is held for it stays bounded however much is published, and its stream ends so
    /// the client relists. A watcher that keeps up is never cut off.
    @Test func aWatcherThatStopsReadingIsCutOffAtItsByteBudget() async throws {
        let object: JSONValue = ["data": .string(String(repeating: "n", count: 1 << 10))]
        let megabyte = 1 << 20
        var feed = ChangeFeed(capacity: 10_000, byteLimit: 8 * megabyte, subscriberByteBudget: 4 * megabyte, startRevision: 1)
        let stalled = try feed.subscribe(resource: "nodes", namespace: nil, after: 1)
        let reading = try feed.subscribe(resource: "nodes", namespace: nil, after: 1)
        var received = 0
        var iterator = reading.changes.makeAsyncIterator()
        // 700 changes of 1.4 MB each, as a node PUTting its own large Node would publish.
        for revision in Int64(2)...701 {
            feed.publish(Change(revision: revision, resource: "nodes", namespace: "", type: .modified, object: object, previous: object), bytes: 1_400_000)
            if await iterator.next() != nil { received += 1 }
            #expect((feed.pendingBytes(of: stalled) ?? 0) <= 4 * megabyte + 1_400_000)
        }
        #expect(feed.cutOffCount == 1 && feed.subscriberCount == 1 && received == 700)
        // Taken changes are counted off at the next publish: at most the newest one is pending.
        #expect(feed.pendingBytes(of: reading) == 1_400_000)
        // What the stalled watcher's stream still holds (ended here in case it was not cut off).
        feed.unsubscribe(stalled.id)
        var held = 0
        for await _ in stalled.changes { held += 1 }
        #expect(held <= 4, "the stalled watcher held \(held) changes")
    }

    /// A client that stops reading a streamed response (a TCP zero window) has its connection
    /// closed once a write makes no progress for the write timeout, freeing the connection and
    /// its watch slot.
    @Test func aStreamThatTheClientStopsReadingIsClosed() async throws {
        let ended = StreamEnd()
        let (port, serving) = try await Self.serve(EndlessStream(ended: ended))
        defer { serving.cancel() }
        let client = Self.connect(port: port)
        #expect(client >= 0)
        defer { close(client) }
        let request = Array("GET /watch HTTP/1.1\r\nHost: localhost\r\n\r\n".utf8)
        #expect(request.withUnsafeBytes { send(client, $0.baseAddress, $0.count, 0) } == request.count)
        // The client never reads; the server's writes stall once the socket buffers are full.
        for _ in 0..<300 where !ended.value { try await Task.sleep(for: .milliseconds(100)) }
        #expect(ended.value, "the stalled stream is still held open")
    }

    /// A client that leaves while the server prepares an upgrade (a proxied exec whose agent
    /// takes a moment): the upgrade's session still runs, on a closed connection, so it lets go
    /// of what it holds (the agent's connection) instead of leaking it.
    @Test func anUpgradeWhoseClientLeftStillRunsItsSession() async throws {
        let ran = StreamEnd()
        let (port, serving) = try await Self.serve(SlowUpgrade(ran: ran))
        defer { serving.cancel() }
        let client = Self.connect(port: port)
        #expect(client >= 0)
        let request = Array("GET /exec HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n".utf8)
        #expect(request.withUnsafeBytes { send(client, $0.baseAddress, $0.count, 0) } == request.count)
        // Gone at once, with a reset (no lingering).
        var linger = linger(l_onoff: 1, l_linger: 0)
        setsockopt(client, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<linger>.size))
        close(client)
        for _ in 0..<50 where !ran.value { try await Task.sleep(for: .milliseconds(100)) }
        #expect(ran.value, "the upgrade's session never ran: what it holds would leak")
    }

    /// A plain HTTP server for `handler` on a free port (1 s write timeout); its port and task.
    static func serve(_ handler: some HTTPRequestHandler) async throws -> (Int, Task<Void, any Error>) {
        let server = APIHTTPServer(handler: handler, tls: nil, logger: Logger(label: "test"), requestTimeoutSeconds: 30, writeTimeoutSeconds: 1, limits: ClientLimits())
        let port = Mutex(0)
        let serving = Task { try await server.run(host: "127.0.0.1", port: 0) { bound in port.withLock { $0 = bound } } }
        while port.withLock({ $0 }) == 0 { try await Task.sleep(for: .milliseconds(20)) }
        return (port.withLock { $0 }, serving)
    }

    static func connect(port: Int) -> Int32 {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        let connected = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { Foundation.connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        return connected == 0 ? descriptor : -1
    }
}

/// Streams 64 KiB chunks until a write fails, then records that the stream ended.
private struct EndlessStream: HTTPRequestHandler {
    let ended: StreamEnd
    func handle(_ request: HTTPRequest) async -> HTTPResponse {
        HTTPResponse(status: 200, headers: [], body: .stream { writer in
            defer { ended.value = true }
            let chunk = [UInt8](repeating: 0x78, count: 64 << 10)
            while true { try await writer.write(chunk) }
        })
    }
}

/// Answers with an upgrade after a moment; its session records that it ran.
private struct SlowUpgrade: HTTPRequestHandler {
    let ran: StreamEnd
    func handle(_ request: HTTPRequest) async -> HTTPResponse {
        try? await Task.sleep(for: .milliseconds(300))
        return HTTPResponse(status: 101, headers: [("Upgrade", "websocket"), ("Connection", "Upgrade")], body: .upgrade { connection in
            ran.value = true
            connection.close()
        })
    }
}

private final class StreamEnd: Sendable {
    private let ended = Atomic(false)
    var value: Bool {
        get { ended.load(ordering: .relaxed) }
        set { ended.store(newValue, ordering: .relaxed) }
    }
}
