import Foundation
import KubeModel
import IotkubeTestSupport
import Testing

/// Clients other than the newest kubectl: kubectl 1.20 (from before OpenAPI v3 and aggregated
/// discovery) and the official Python client, whose models reject objects missing required fields.
@Suite(.ownThread, .serialized)
struct OtherClientTests {
    static func fixture(_ name: String) -> String { KubectlTests.fixture(name) }

    @Test(.enabled(if: toolAvailable("kubectl-1.20"), "kubectl 1.20 is not installed (packaging/install-deps.sh --test)"))
    func kubectl120() throws {
        let server = try ServerProcess()
        let old = try #require(ServerProcess.findExecutable("kubectl-1.20"))
        func run(_ arguments: [String], input: String? = nil) throws -> (status: Int32, output: String) {
            try ServerProcess.run(old, ["--kubeconfig", server.kubeconfig] + arguments, input: input)
        }
        #expect(try run(["get", "namespaces"]).output.contains("kube-system"))
        // kubectl 1.20 validates against OpenAPI v2 (protobuf), which this server does not serve.
        let created = try run(["create", "--validate=false", "-f", Self.fixture("pod-env.yaml")])
        #expect(created.status == 0, "\(created.output)")
        #expect(try run(["apply", "--validate=false", "-f", Self.fixture("pod-security.yaml")]).output.contains("created"))
        let original = try String(contentsOfFile: Self.fixture("pod-security.yaml"), encoding: .utf8)
        let applied = try run(["apply", "--validate=false", "-f", "-"], input: original.replacingOccurrences(of: "image: app:hardened", with: "image: app:hardened-2"))
        #expect(applied.output.contains("configured"), "\(applied.output)")
        let pods = try run(["get", "pods"]).output
        #expect(pods.range(of: #"env-demo\s+0/1\s+Pending"#, options: .regularExpression) != nil, "\(pods)")
        #expect(try run(["label", "pod", "env-demo", "old=client"]).status == 0)
        #expect(try run(["describe", "pod", "env-demo"]).output.contains("old=client"))
        #expect(try run(["create", "configmap", "from-old", "--from-literal=a=b"]).status == 0)
        #expect(try run(["get", "configmap", "from-old", "-o", "jsonpath={.data.a}"]).output == "b")
        #expect(try run(["delete", "pod", "env-demo"]).output.contains("deleted"))
    }

    static let pythonScript = """
        import sys
        from kubernetes import client, config, watch
        config.load_kube_config(sys.argv[1])
        core = client.CoreV1Api()
        nodes = core.list_node()
        pods = core.list_pod_for_all_namespaces()
        print("nodes", sorted(n.metadata.name for n in nodes.items))
        print("node-ready", [c.status for c in nodes.items[0].status.conditions if c.type == "Ready"])
        print("pods", sorted(p.metadata.name for p in pods.items))
        seen = []
        w = watch.Watch()
        for event in w.stream(core.list_namespaced_pod, namespace="default", timeout_seconds=5):
            seen.append(event["type"] + ":" + event["object"].metadata.name)
            if len(seen) == len(pods.items):
                w.stop()
        print("watch", sorted(seen))
        leases = client.CoordinationV1Api().list_namespaced_lease("kube-node-lease")
        print("leases", [l.spec.holder_identity for l in leases.items])
        """

    @Test(.enabled(if: toolAvailable("python3") && toolAvailable("kubectl"), "python3 or kubectl is not installed"))
    func officialPythonClient() throws {
        let server = try ServerProcess()
        #expect(try server.kubectl(["create", "-f", Self.fixture("node.json")]).status == 0)
        #expect(try server.kubectl(["create", "-f", Self.fixture("pod-multi-container.yaml")]).status == 0)
        #expect(try server.kubectl(["create", "-f", Self.fixture("lease.yaml")]).status == 0)
        let script = server.directory.appendingPathComponent("client.py")
        try Self.pythonScript.write(to: script, atomically: true, encoding: .utf8)
        let python = ServerProcess.findExecutable("python3")!
        let result = try ServerProcess.run(python, [script.path, server.kubeconfig])
        #expect(result.status == 0, "\(result.output)")
        #expect(result.output.contains("nodes ['pi-kitchen']"), "\(result.output)")
        #expect(result.output.contains("node-ready ['True']"), "\(result.output)")
        #expect(result.output.contains("pods ['web']"), "\(result.output)")
        #expect(result.output.contains("watch ['ADDED:web']"), "\(result.output)")
        #expect(result.output.contains("leases ['pi-kitchen']"), "\(result.output)")
    }
}
