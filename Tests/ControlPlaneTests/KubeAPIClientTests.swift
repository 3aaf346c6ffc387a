import Foundation
import KubeModel
import IotkubeTestSupport
import Testing

@testable import ControlPlane
@testable import KubeClient

/// The client against a real iotkube-server process over HTTPS with client certificates.
@Suite(.ownThread, .serialized)
struct KubeAPIClientTests {
    static func adminConfiguration(_ server: ServerProcess) throws -> ClientConfiguration {
        try Kubeconfig.parse([UInt8](try Data(contentsOf: URL(fileURLWithPath: server.kubeconfig))))
    }

    static func client(_ server: ServerProcess) throws -> KubeAPIClient {
        try KubeAPIClient(configuration: try adminConfiguration(server))
    }

    @Test func kubeconfigIsParsed() throws {
        let server = try ServerProcess()
        let configuration = try Self.adminConfiguration(server)
        #expect(configuration.server == "https://127.0.0.1:\(server.port)")
        #expect(configuration.certificateAuthorityPEM.map { String(decoding: $0, as: UTF8.self).hasPrefix("-----BEGIN CERTIFICATE-----") } == true)
        #expect(configuration.clientKeyPEM != nil)
        #expect(throws: KubeClientError.self) { try Kubeconfig.parse(Array("apiVersion: v1\nkind: Config\n".utf8)) }
        #expect(throws: KubeClientError.self) { try Kubeconfig.parse(Array("current-context: x\ncontexts: []\n".utf8)) }
        #expect(throws: KubeClientError.self) { try ClientConfiguration(server: "http://plain:80").endpoint() }
        #expect(try ClientConfiguration(server: "https://[fe80::1]:6443/").endpoint() == ("fe80::1", 6443))
    }

    @Test func crudAndConflicts() async throws {
        let server = try ServerProcess()
        let client = try Self.client(server)
        var configMap = ConfigMap(metadata: ObjectMeta(name: "settings", namespace: "default"), data: ["mode": "edge"])
        configMap = try await client.create(configMap)
        #expect(configMap.metadata.uid != nil)
        let stale = configMap
        configMap.data?["mode"] = "field"
        configMap = try await client.update(configMap)
        #expect(try await client.get(ConfigMap.self, namespace: "default", name: "settings").data?["mode"] == "field")
        await #expect {
            _ = try await client.update(stale)
        } throws: { error in
            (error as? KubeClientError)?.statusCode == 409
        }
        let patched = try await client.mergePatch(ConfigMap.self, namespace: "default", name: "settings", patch: ["data": ["extra": "1"]])
        #expect(patched.data == ["mode": "field", "extra": "1"])
        let list = try await client.list(ConfigMap.self, namespace: "default", fieldSelector: "metadata.name=settings")
        #expect(list.items.map(\.metadata.name) == ["settings"])
        try await client.delete(ConfigMap.self, namespace: "default", name: "settings")
        await #expect {
            _ = try await client.get(ConfigMap.self, namespace: "default", name: "settings")
        } throws: { error in
            (error as? KubeClientError)?.statusCode == 404
        }
        let lease = Lease(metadata: ObjectMeta(name: "pi", namespace: "kube-node-lease"), spec: LeaseSpec(holderIdentity: "pi", leaseDurationSeconds: 40, renewTime: .now()))
        #expect(try await client.create(lease).spec?.holderIdentity == "pi")
    }

    @Test func watchDeliversChangesAndGone() async throws {
        let server = try ServerProcess()
        let client = try Self.client(server)
        let start = try await client.list(ConfigMap.self, namespace: "default").metadata.resourceVersion ?? "0"
        let received = Collected()
        let watcher = Task {
            try await client.watch(ConfigMap.self, namespace: "default", resourceVersion: start, timeoutSeconds: 20) { event in
                await received.add("\(event.type.rawValue):\(event.object?.metadata.name ?? "")")
            }
        }
        try await Task.sleep(for: .milliseconds(300))
        _ = try await client.create(ConfigMap(metadata: ObjectMeta(name: "w", namespace: "default"), data: ["a": "1"]))
        _ = try await client.mergePatch(ConfigMap.self, namespace: "default", name: "w", patch: ["data": ["a": "2"]])
        try await client.delete(ConfigMap.self, namespace: "default", name: "w")
        for _ in 0..<50 where await received.items.count < 3 { try await Task.sleep(for: .milliseconds(100)) }
        watcher.cancel()
        #expect(await received.items == ["ADDED:w", "MODIFIED:w", "DELETED:w"])
        _ = try? await watcher.value

        // After a restart the server's change buffer starts empty: older versions are Gone.
        try server.restart()
        let restarted = try Self.client(server)
        await #expect {
            try await restarted.watch(ConfigMap.self, namespace: "default", resourceVersion: start, timeoutSeconds: 5) { _ in }
        } throws: { error in
            (error as? KubeClientError)?.statusCode == 410
        }
    }

    /// The local ports of this machine's established TCP connections to `port` on loopback.
    static func connections(to port: Int) -> Set<String> {
        // Read to its end (a /proc file reports no size; a sized read would stop at a page).
        let table = String(decoding: FileHandle(forReadingAtPath: "/proc/net/tcp")?.readDataToEndOfFile() ?? Data(), as: UTF8.self)
        let remote = String(format: "0100007F:%04X", port)
        return Set(table.split(separator: "\n").dropFirst().compactMap { line -> String? in
            let fields = line.split(separator: " ")
            // local_address rem_address st: 01 is ESTABLISHED.
            guard fields.count > 3, fields[2] == remote, fields[3] == "01" else { return nil }
            return String(fields[1])
        })
    }

    /// Requests share a kept-alive connection (one TLS handshake, not one per request); one
    /// the server dropped (a restart) costs a retry on a new connection, not an error.
    @Test func requestsShareKeptAliveConnections() async throws {
        let server = try ServerProcess()
        let client = try Self.client(server)
        var seen: Set<String> = []
        for _ in 0..<20 {
            _ = try await client.get(Namespace.self, name: "default")
            let open = Self.connections(to: server.port)
            #expect(open.count == 1, "connections open after a request: \(open), idle \(client.transport.pool.idleCount), port \(server.port)")
            seen.formUnion(open)
        }
        #expect(seen.count == 1, "20 requests used \(seen.count) connections")

        // Concurrent requests open what they need; at most the pool's limit stays open.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<8 { group.addTask { _ = try await client.list(ConfigMap.self, namespace: "default") } }
            try await group.waitForAll()
        }
        #expect(client.transport.pool.idleCount <= ConnectionPool.maximumIdle)
        // The ones beyond it are closed (asynchronously: a moment later).
        for _ in 0..<40 where Self.connections(to: server.port).count > ConnectionPool.maximumIdle { try await Task.sleep(for: .milliseconds(50)) }
        #expect(Self.connections(to: server.port).count <= ConnectionPool.maximumIdle)

        // The server restarts under the kept connections: the next request still succeeds.
        try server.restart()
        #expect(try await client.get(Namespace.self, name: "default").metadata.name == "default")
        #expect(Self.connections(to: server.port).count == 1)
        // Stopped: a clear error, no hang.
        server.stop()
        await #expect {
            _ = try await client.get(Namespace.self, name: "default")
        } throws: { error in
            if case .transport = error as? KubeClientError { return true }
            return false
        }
        // A failed exchange leaves no dead connection in the pool.
        #expect(client.transport.pool.idleCount == 0)
    }

    @Test func refusesAServerFromAnotherCA() async throws {
        let server = try ServerProcess()
        var configuration = try Self.adminConfiguration(server)
        configuration.certificateAuthorityPEM = Array(try CertificateAuthority.generate(commonName: "other").certificatePEM.utf8)
        let client = try KubeAPIClient(configuration: configuration)
        // The handshake fails while the request is written: each try names the certificate,
        // never only the closed connection.
        for _ in 1...5 {
            await #expect {
                _ = try await client.get(Namespace.self, name: "default")
            } throws: { error in
                if case .transport(let message) = error as? KubeClientError { return message.contains("CERTIFICATE_VERIFY_FAILED") }
                return false
            }
        }
        let nobody = try KubeAPIClient(configuration: ClientConfiguration(server: "https://127.0.0.1:1", certificateAuthorityPEM: configuration.certificateAuthorityPEM))
        await #expect(throws: KubeClientError.self) { _ = try await nobody.get(Namespace.self, name: "default") }
    }
}

actor Collected {
    var items: [String] = []
    func add(_ item: String) { items.append(item) }
}
