import FoundationEssentials
import KubeClient
import KubeModel
import NodeCrypto
import Runtime
import SystemSupport

/// `iotkube-agent status`: what this board's agent looks like from the cluster's side.
public struct AgentStatusReport: Sendable {
    public var lines: [String] = []
    public var healthy = true

    /// Gathers the report for the configuration at `path`.
    public static func gather(configPath: String, now: Timestamp = .now()) async -> AgentStatusReport {
        var report = AgentStatusReport()
        let configuration: AgentConfiguration
        do {
            configuration = try AgentConfiguration.load(configPath)
        } catch {
            report.add("Configuration", "\(error)", healthy: false)
            return report
        }
        report.add("Node", configuration.nodeName)
        report.add("Server", configuration.server)
        guard let kubeconfig = try? AtomicFile.read(configuration.kubeconfig),
              let clientConfiguration = try? Kubeconfig.parse(kubeconfig) else {
            report.add("Credentials", "\(configuration.kubeconfig) is missing or unreadable: join again with --force", healthy: false)
            return report
        }
        if let pem = clientConfiguration.clientCertificatePEM, let certificate = try? CertificateFacts(pem: pem) {
            let expiry = Timestamp(seconds: certificate.notValidAfter)
            let days = (expiry.seconds - now.seconds) / 86400
            report.add("Certificate", "expires \(expiry) (\(days) days)", healthy: expiry > now)
        }
        do {
            let client = try KubeAPIClient(configuration: clientConfiguration)
            let node = try await client.get(Node.self, name: configuration.nodeName)
            report.add("Connection", "connected")
            let ready = node.status?.conditions?.first { $0.type == "Ready" }
            report.add("Node status", ready.map { "Ready=\($0.status.rawValue)" + ($0.reason.map { " (\($0))" } ?? "") } ?? "not reported", healthy: ready?.status == .true)
            if let lease = try? await client.get(Lease.self, namespace: HeartbeatService.leaseNamespace, name: configuration.nodeName),
               let renewed = lease.spec?.renewTime?.timestamp {
                let age = now.seconds - renewed.seconds
                report.add("Last heartbeat", "\(renewed) (\(age) s ago)", healthy: age <= Int64(HeartbeatService.leaseDurationSeconds))
            } else {
                report.add("Last heartbeat", "none", healthy: false)
            }
            let pods = try await client.list(Pod.self, fieldSelector: "spec.nodeName=\(configuration.nodeName)")
            report.add("Pods", pods.items.isEmpty ? "none" : "\(pods.items.count)")
            for pod in pods.items {
                report.lines.append("  \(pod.metadata.namespace ?? "")/\(pod.metadata.name ?? "")  \(pod.status?.phase?.rawValue ?? "Pending")")
            }
        } catch {
            report.add("Connection", "unreachable: \(error)", healthy: false)
        }
        // What runs on the board, from the runtime's own records (also when the API is away).
        let containers = BuiltinRuntime(root: configuration.runtimeRoot ?? "/run/iotkube/runtime").list()
        let running = containers.filter { $0.status == .running }.count
        report.add("Containers", "\(running) running, \(containers.count - running) stopped (local runtime)")
        for container in containers.sorted(by: { $0.id < $1.id }) {
            let annotations = container.annotations ?? [:]
            let pod = "\(annotations["io.kubernetes.pod.namespace"] ?? "?")/\(annotations["io.kubernetes.pod.name"] ?? "?")"
            report.lines.append("  \(pod)  \(annotations["io.kubernetes.container.name"] ?? container.id)  \(container.status.rawValue)")
        }
        return report
    }

    mutating func add(_ label: String, _ value: String, healthy isHealthy: Bool = true) {
        lines.append((label + ":").padding(16) + value)
        if !isHealthy { healthy = false }
    }
}

extension String {
    fileprivate func padding(_ width: Int) -> String { count >= width ? self + " " : self + String(repeating: " ", count: width - count) }
}
