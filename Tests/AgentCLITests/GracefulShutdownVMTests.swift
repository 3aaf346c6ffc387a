import Foundation
import IotkubeTestSupport
import KubeModel
import Testing

/// The graceful node shutdown against the real systemd-logind: a Debian VM with systemd as PID
/// 1, the agent as its systemd service, `systemctl reboot`. The agent raises logind's
/// InhibitDelayMaxSec to its shutdownGracePeriod, holds a delay lock, and on the reboot stops
/// the ordinary pod before the critical one, reports both Failed (Terminated) to the server
/// and only then lets the reboot go on; after the boot the pods stay ended.
@Suite(.ownThread, .heavy, .enabled(if: VirtualMachine.ready && PodNode.available, "\(VirtualMachine.reason); and what the pod tests need"), .serialized)
struct GracefulShutdownVMTests {
    static func step(_ name: String, since start: Date) {
        print("[vm shutdown] \(name) after \(Int(Date().timeIntervalSince(start))) s")
    }

    func pod(_ name: String, image: String, critical: Bool = false) -> String {
        NodeShutdownTests.trappingPod(name, image: image, hostPath: "/var/lib/shutdown-test", seconds: 3, critical: critical)
    }

    @Test func systemctlRebootStopsThePodsByPriorityAndReportsThemFirst() async throws {
        let start = Date()
        let registry = try await onOwnThread { try PodImageRegistry.shared.get() }
        let guestRegistry = registry.address.replacingOccurrences(of: "127.0.0.1", with: "10.0.2.2")
        let image = "\(guestRegistry)/test/busybox:1"
        let server = try await onOwnThread { try ServerProcess(arguments: ["--node-monitor-grace-period", "300"], advertiseAddress: "10.0.2.2") }
        defer { server.process.terminate() }
        let vm = try await VirtualMachine.make()
        defer { vm.stop() }
        Self.step("VM booted", since: start)
        func guest(_ script: String, timeout: TimeInterval = 600) async throws -> String { try await vm.checkAsync(script, timeout: timeout) }
        func kubectl(_ arguments: [String], input: String? = nil) async throws -> String {
            let result = try await onOwnThread { try server.kubectl(arguments, input: input) }
            guard result.status == 0 else { throw TestFailure("kubectl \(arguments.joined(separator: " ")): \(result.output)") }
            return result.output
        }
        func fetch(_ name: String) async throws -> Pod {
            try KubeJSON.decode(Pod.self, from: Array(try await kubectl(["get", "pod", name, "-o", "json"]).utf8))
        }

        // The agent as the package installs it (the unit file from systemd/), from this build.
        try await onOwnThread { try vm.installAgent(JoinTests.agent) }
        let unit = try String(contentsOfFile: VirtualMachine.packageRoot + "/systemd/iotkube-agent.service", encoding: .utf8)
            .replacingOccurrences(of: "/usr/bin/iotkube-agent", with: "/usr/local/bin/iotkube-agent")
        try unit.write(toFile: vm.share + "/iotkube-agent.service", atomically: true, encoding: .utf8)
        // A persistent journal: the agent's last words before the reboot are read after it.
        _ = try await guest("""
            cp iotkube-agent.service /etc/systemd/system/ && systemctl daemon-reload
            mkdir -p /var/lib/shutdown-test /etc/systemd/journald.conf.d
            printf '[Journal]\\nStorage=persistent\\n' > /etc/systemd/journald.conf.d/zz-persistent.conf
            systemctl restart systemd-journald && journalctl --flush
            """)
        let token = try await onOwnThread { try JoinTests.token(server) }
        _ = try await guest("""
            iotkube-agent join '\(token)' --node-name vm-shutdown --insecure-registry \(guestRegistry)
            printf 'shutdownGracePeriod: 40s\\nshutdownGracePeriodCriticalPods: 20s\\n' >> /etc/iotkube/agent.yaml
            systemctl restart iotkube-agent
            """)
        var ready = false
        for _ in 0..<150 where !ready {
            ready = (try? await kubectl(["get", "node", "vm-shutdown"]))?.range(of: #"vm-shutdown\s+Ready"#, options: .regularExpression) != nil
            if !ready { try await Task.sleep(for: .seconds(2)) }
        }
        let notReady = ready ? "" : ((try? await guest("journalctl -u iotkube-agent --no-pager -n 30")) ?? "")
        #expect(ready, "the node did not become Ready: \(notReady)")
        Self.step("node Ready", since: start)

        // logind's longest delay raised to the 40 s (and 5 s for the final statuses), and the
        // agent's delay lock held.
        var lock = ""
        for _ in 0..<60 {
            lock = try await guest("busctl get-property org.freedesktop.login1 /org/freedesktop/login1 org.freedesktop.login1.Manager InhibitDelayMaxUSec; systemd-inhibit --list --no-legend --no-pager | grep iotkube-agent || true")
            if lock.contains("delay") { break }
            try await Task.sleep(for: .seconds(1))
        }
        #expect(lock.hasPrefix("t 45000000\n") && lock.contains("shutdown") && lock.contains("delay"), "\(lock)")
        let dropIn = try await guest("cat /etc/systemd/logind.conf.d/99-iotkube.conf")
        #expect(dropIn.contains("InhibitDelayMaxSec=45"), "\(dropIn)")

        _ = try await kubectl(["apply", "-f", "-"], input: pod("ordinary", image: image) + "\n---\n" + pod("critical", image: image, critical: true))
        for name in ["ordinary", "critical"] {
            var running = false
            for _ in 0..<150 where !running {
                running = (try? await fetch(name))?.status?.phase == .running
                if !running { try await Task.sleep(for: .seconds(2)) }
            }
            let journal = running ? "" : ((try? await guest("journalctl -u iotkube-agent --no-pager -n 30")) ?? "")
            #expect(running, "\(name) did not start: \(journal)")
        }
        Self.step("pods running", since: start)

        // The reboot: seen from the server, the node says it is shutting down.
        _ = try await guest("systemctl reboot")
        var sawShuttingDown = false
        while vm.qemuRunning && !sawShuttingDown {
            let message = try? await kubectl(["get", "node", "vm-shutdown", "-o", "jsonpath={.status.conditions[?(@.type==\"Ready\")].message}"])
            sawShuttingDown = message == "node is shutting down"
            try await Task.sleep(for: .milliseconds(500))
        }
        #expect(sawShuttingDown, "the node never reported that it was shutting down")
        try await vm.bootAfterGuestRebootAsync(timeout: 600)
        Self.step("rebooted", since: start)

        for name in ["ordinary", "critical"] {
            let ended = try await fetch(name)
            #expect(ended.status?.phase == .failed && ended.status?.reason == "Terminated"
                    && ended.status?.message == "Pod was terminated in response to imminent node shutdown.", "\(name): \(String(describing: ended.status))")
            #expect(ended.status?.conditions?.contains { $0.type == "DisruptionTarget" && $0.status == .true } == true)
            #expect(PodNode.status(ended, "app")?.state?.terminated?.exitCode == 0, "\(name) did not end by its own TERM handler: \(String(describing: ended.status))")
        }
        // In priority order, each taking its time: the critical pod got its TERM once the ordinary one had ended.
        let order = try await guest("cat /var/lib/shutdown-test/order")
        let noted = Dictionary(order.split(separator: "\n").compactMap { line -> (String, Double)? in
            let parts = line.split(separator: " ")
            return parts.count == 2 ? Double(parts[1]).map { (String(parts[0]), $0) } : nil
        }, uniquingKeysWith: { first, _ in first })
        if let ordinaryExit = noted["ordinary-exit"], let criticalTerm = noted["critical-term"], let criticalExit = noted["critical-exit"] {
            #expect(ordinaryExit <= criticalTerm && criticalTerm < criticalExit, "\(order)")
        } else {
            Issue.record("not every pod noted its TERM and its end: \(order)")
        }
        // The lock was released by the agent, after the pods, before systemd stopped it.
        let lastWords = try await guest("journalctl -b -1 -u iotkube-agent --no-pager -o cat | grep -E 'shutting down|pods stopped, the shutdown goes on|raised logind' || true")
        #expect(lastWords.contains("pods stopped, the shutdown goes on"), "\(lastWords)")
        // Ended pods stay ended after the boot.
        try await Task.sleep(for: .seconds(20))
        let after = try await guest("iotkube-agent status || true")
        #expect(!after.contains("default/ordinary  app  running") && !after.contains("default/critical  app  running"), "\(after)")
        #expect(try await fetch("ordinary").status?.phase == .failed)
        Self.step("pods ended and reported", since: start)
    }
}
