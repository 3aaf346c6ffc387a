import Foundation
import IotkubeTestSupport
import KubeModel
import Testing

/// The graceful node shutdown end to end on the host: a real agent with real pods, a real
/// dbus-daemon and a logind stand-in handing out the delay lock (the real logind and
/// `systemctl reboot` are in PackageVMTests). Pods stop lowest priority first within their
/// group's time, end Failed as the kubelet reports them, the node turns NotReady and refuses
/// new pods, and only then is the lock released; a signal forged by another client of the bus
/// changes nothing; a cancelled shutdown takes the lock again and admits pods again.
@Suite(.ownThread, .heavy, .serialized,
       .enabled(if: PodNode.available && PrivateSystemBus.available, "needs what the pod tests need, dbus-daemon, dbus-send and python3-dbus/python3-gi"))
struct NodeShutdownTests {
    var image: String { (try? PodImageRegistry.shared.get().busybox) ?? "" }

    /// A pod whose container, on SIGTERM, notes the time (seconds since boot) in `hostPath`'s
    /// `order` file, takes `seconds` to finish and notes that too.
    static func trappingPod(_ name: String, image: String, hostPath: String, seconds: Int, critical: Bool = false, nodeName: String? = nil) -> String {
        let note = { (what: String) in "read up rest < /proc/uptime; echo \(name)-\(what) $up >> /shared/order" }
        return """
            apiVersion: v1
            kind: Pod
            metadata: {name: \(name)}
            spec:
              terminationGracePeriodSeconds: 60
              \(critical ? "priorityClassName: system-node-critical" : "")
              \(nodeName.map { "nodeName: \($0)" } ?? "")
              containers:
              - name: app
                image: \(image)
                command: ["sh", "-c", "trap '\(note("term")); sleep \(seconds); \(note("exit")); exit 0' TERM; while true; do sleep 1; done"]
                volumeMounts: [{name: shared, mountPath: /shared}]
              volumes: [{name: shared, hostPath: {path: \(hostPath)}}]
            """
    }

    func pod(_ name: String, critical: Bool = false, nodeName: String? = nil) -> String {
        Self.trappingPod(name, image: image, hostPath: sharedDirectory, seconds: 2, critical: critical, nodeName: nodeName)
    }

    let sharedDirectory = NSTemporaryDirectory() + "iotkube-shutdown-\(UUID().uuidString.prefix(8))"

    func readyCondition(_ node: PodNode) async throws -> (status: String, message: String) {
        let output = try await node.kubectl(["get", "node", node.name, "-o", "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}|{.status.conditions[?(@.type==\"Ready\")].message}"])
        let parts = output.split(separator: "|", maxSplits: 1).map(String.init)
        return (parts.first ?? "", parts.count > 1 ? parts[1] : "")
    }

    func order() -> [(event: String, time: Double)] {
        ((try? String(contentsOfFile: sharedDirectory + "/order", encoding: .utf8)) ?? "").split(separator: "\n").compactMap { line in
            let parts = line.split(separator: " ")
            guard parts.count == 2, let time = Double(parts[1]) else { return nil }
            return (String(parts[0]), time)
        }
    }

    @Test func aShutdownStopsPodsByPriorityReportsThemAndOnlyThenReleasesTheLock() async throws {
        try FileManager.default.createDirectory(atPath: sharedDirectory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o777])
        defer { try? FileManager.default.removeItem(atPath: sharedDirectory) }
        let bus = try await onOwnThread { try PrivateSystemBus(delayMaxSeconds: 60) }
        defer { bus.stop() }
        let node = try await PodNode.make(name: "shutdown-board", configuration: "shutdownGracePeriod: 12s\nshutdownGracePeriodCriticalPods: 6s\n",
                                          agentEnvironment: ["DBUS_SYSTEM_BUS_ADDRESS": bus.address])
        do {
            // The agent holds a delay lock of "logind".
            let inhibited = try await onOwnThread { try bus.waitFor("inhibit iotkube-agent shutdown delay", seconds: 60) }
            let agentName = try #require(inhibited?.split(separator: " ").last.map(String.init), "no lock taken: \(bus.events)\n\(node.agentLogTail)")

            try await node.apply(pod("ordinary") + "\n---\n" + pod("critical", critical: true))
            for name in ["ordinary", "critical"] { _ = try await node.waitForPod(name) { PodNode.isReady($0) } }
            #expect(try await node.pod("critical").spec?.priority == 2_000_001_000)

            // Any client of the bus can send the agent a signal: one not from logind changes nothing.
            _ = try await onOwnThread { try bus.forgeShutdown(to: agentName) }
            // Nor does one in the other byte order (the bus passes it on as sent): the agent
            // keeps its connection and its lock.
            try await onOwnThread { try bus.forgeBigEndianShutdown() }
            try await Task.sleep(for: .seconds(4))
            #expect(order().isEmpty, "a forged PrepareForShutdown stopped pods: \(order())")
            let agentLog = (try? String(contentsOfFile: node.agentLog, encoding: .utf8)) ?? ""
            let connections = agentLog.components(separatedBy: "a shutdown waits up to").count - 1
            #expect(connections == 1, "the agent lost its logind connection: \(node.agentLogTail)")
            #expect(!bus.events.contains { $0.hasPrefix("released") })
            #expect(try await node.pod("ordinary").status?.phase == .running)
            #expect(try await readyCondition(node).status == "True")

            // logind announces the shutdown.
            bus.announceShutdown()
            var notReady = (status: "", message: "")
            for _ in 0..<100 {
                notReady = try await readyCondition(node)
                if notReady.status == "False" { break }
                try await Task.sleep(for: .milliseconds(200))
            }
            #expect(notReady == ("False", "node is shutting down"), "\(notReady)")
            // No new pod while shutting down (placed on the node directly: the scheduler
            // keeps pods off a node that is not ready).
            try await node.apply(pod("late", nodeName: node.name))
            let late = try await node.waitForPod("late", seconds: 30) { $0.status?.phase == .failed }
            #expect(late.status?.reason == "NodeShutdown" && late.status?.message == "Pod was rejected as the node is shutting down.")

            let released = try await onOwnThread { try bus.waitFor("released 1", seconds: 60) }
            #expect(released != nil, "the lock was not released: \(bus.events)\n\(node.agentLogTail)")
            let events = bus.timedEvents
            let signalled = try #require(events.first { $0.event == "signal true" }?.time)
            let releasedAt = try #require(events.first { $0.event == "released 1" }?.time)
            // Both pods ended as the kubelet reports a shutdown, before the lock went.
            for name in ["ordinary", "critical"] {
                let ended = try await node.pod(name)
                #expect(ended.status?.phase == .failed && ended.status?.reason == "Terminated"
                        && ended.status?.message == "Pod was terminated in response to imminent node shutdown.", "\(name): \(String(describing: ended.status))")
                let disruption = ended.status?.conditions?.first { $0.type == "DisruptionTarget" }
                #expect(disruption?.status == .true && disruption?.reason == "TerminationByKubelet", "\(name): \(String(describing: disruption))")
                #expect(PodNode.status(ended, "app")?.state?.terminated?.exitCode == 0, "\(name) did not end by its own TERM handler")
            }
            // The ordinary group first, within its time; the critical one once it had finished.
            let noted = Dictionary(order().map { ($0.event, $0.time) }, uniquingKeysWith: { first, _ in first })
            let ordinaryTerm = try #require(noted["ordinary-term"], "\(order())"), ordinaryExit = try #require(noted["ordinary-exit"])
            let criticalTerm = try #require(noted["critical-term"], "\(order())"), criticalExit = try #require(noted["critical-exit"])
            #expect(signalled <= ordinaryTerm + 0.5 && ordinaryExit <= criticalTerm && criticalTerm < criticalExit, "\(order()), signal at \(signalled)")
            #expect(criticalExit <= releasedAt, "the lock went before the critical pod had stopped: \(order()), released at \(releasedAt)")
            #expect(releasedAt - signalled < 12 + 3, "the shutdown took longer than its 12 s")
            // Their end is checkpointed: a reboot without the server does not start them again.
            let checkpoint = try String(contentsOfFile: node.stateDirectory + "/pods-checkpoint.json", encoding: .utf8)
            let saved = try KubeJSON.decode(KubeList<Pod>.self, from: Array(checkpoint.utf8), validation: .discard).items
            #expect(saved.filter { ["ordinary", "critical"].contains($0.metadata.name ?? "") }.allSatisfy { $0.status?.phase == .failed }, "\(checkpoint)")

            // The shutdown is cancelled: the lock is taken again and pods are admitted again.
            bus.cancelShutdown()
            let again = try await onOwnThread { try bus.waitFor("inhibit iotkube-agent shutdown delay", count: 2, seconds: 30) }
            #expect(again != nil, "no new lock after the cancel: \(bus.events)")
            var ready = ""
            for _ in 0..<100 {
                ready = try await readyCondition(node).status
                if ready == "True" { break }
                try await Task.sleep(for: .milliseconds(200))
            }
            #expect(ready == "True")
            try await node.apply(pod("after"))
            _ = try await node.waitForPod("after", seconds: 60) { $0.status?.phase == .running }

            // logind restarts (a new connection owns its name): its next shutdown still counts.
            try await onOwnThread { try bus.restartLogind() }
            try await Task.sleep(for: .seconds(3))
            bus.announceShutdown()
            let stopped = try await node.waitForPod("after", seconds: 60) { $0.status?.phase == .failed }
            #expect(stopped.status?.reason == "Terminated", "\(String(describing: stopped.status))")
        } catch {
            await node.shutdown()
            throw error
        }
        await node.shutdown()
    }

    /// The agent's optional loops with nothing to do (no eviction thresholds, no usable device
    /// plugin directory, graceful shutdown off) wait for the agent's end: one returning early
    /// ended the agent's whole service group.
    @Test func anAgentWithItsOptionalLoopsOffKeepsRunning() async throws {
        let node = try await PodNode.make(name: "quiet-board", configuration: "evictionHard: {}\ndevicePluginDirectory: /proc/iotkube-no-such-directory\n")
        try await Task.sleep(for: .seconds(10))
        #expect(node.agent?.isRunning == true, "the agent ended: \(node.agentLogTail)")
        #expect(try await readyCondition(node).status == "True")
        await node.shutdown()
    }
}
