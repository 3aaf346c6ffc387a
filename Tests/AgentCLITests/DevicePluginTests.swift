import Foundation
import IotkubeTestSupport
import KubeModel
import Testing

/// What the test plugin needs: grpcio and its code generator.
enum DevicePluginTools {
    static let python = ServerProcess.findExecutable("python3") ?? "/usr/bin/python3"
    static var available: Bool { (try? ServerProcess.run(python, ["-c", "import grpc, grpc_tools"]).status) == 0 }
}

/// The kubelet's device plugin API against a plugin written with Python's grpcio from the
/// API's proto: registration, ListAndWatch with health, GetPreferredAllocation, Allocate (its
/// environment, device nodes and annotations reach the container), PreStartContainer, an agent
/// restart (the plugin registers again), and refused registrations.
@Suite(.ownThread, .heavy, .serialized, .enabled(if: PodNode.available && DevicePluginTools.available,
                                                   "needs root, kubectl, the CNI plugins, the registry tools and python3 with grpcio and grpcio-tools"))
struct DevicePluginTests {
    static let python = DevicePluginTools.python
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures").path
    var image: String { (try? PodImageRegistry.shared.get().busybox) ?? "" }

    @Test func aGRPCPluginsDevicesReachPodsWithTheirHealth() async throws {
        let base = NSTemporaryDirectory() + "iotkube-plugin-\(UUID().uuidString.prefix(8))"
        let plugins = base + "/plugins", generated = base + "/generated", control = base + "/control"
        for directory in [plugins, generated] { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) }
        defer { try? FileManager.default.removeItem(atPath: base) }
        let compiled = try ServerProcess.run(Self.python, ["-m", "grpc_tools.protoc", "-I", Self.fixtures, "--python_out=\(generated)",
                                                           "--grpc_python_out=\(generated)", Self.fixtures + "/deviceplugin.proto"])
        try #require(compiled.status == 0, "\(compiled.output)")
        // Two widgets of a major no driver has: opening one the device cgroup allows gives ENXIO.
        for minor in 0...1 {
            #expect(mknod(base + "/widget\(minor)", S_IFCHR | 0o600, DeviceManagerTests.deviceNumber(240, UInt32(minor))) == 0)
        }
        let node = try await PodNode.make(name: "plugin-board", configuration: """
            builtinDevices: false
            devicePluginDirectory: "\(plugins)"
            """)
        let plugin = try SpawnedProcess(Self.python, [Self.fixtures + "/device_plugin.py", generated, plugins, "example.com/widget", "widget.sock", control,
                                                      "w0=\(base)/widget0", "w1=\(base)/widget1"], output: .file(base + "/plugin.log"))
        defer { plugin.terminate(); plugin.waitUntilExit() }
        let nodeStatus = { () async throws -> NodeStatus? in
            let result = try await node.serverKubectl(["get", "node", "plugin-board", "-o", "json"])
            return result.status == 0 ? try KubeJSON.decode(Node.self, from: Array(result.output.utf8)).status : nil
        }
        let widgets = { () async throws -> (capacity: Int64?, allocatable: Int64?) in
            let status = try await nodeStatus()
            return (status?.capacity?["example.com/widget"]?.value, status?.allocatable?["example.com/widget"]?.value)
        }
        for _ in 0..<150 where try await widgets().allocatable != 2 { try await Task.sleep(for: .milliseconds(300)) }
        #expect(try await widgets() == (2, 2), "plugin log: \((try? String(contentsOfFile: base + "/plugin.log", encoding: .utf8)) ?? "")")

        // A pod asking for one gets the plugin's preferred widget (w1), its environment and node.
        try await node.apply("""
            apiVersion: v1
            kind: Pod
            metadata: {name: widget-user}
            spec:
              terminationGracePeriodSeconds: 1
              containers:
              - name: app
                image: \(image)
                command: ["sh", "-c", "echo ids=$WIDGET_IDS; ls /dev | grep widget; (true < /dev/widget-w1) 2>&1; sleep 100000"]
                resources: {limits: {example.com/widget: 1}}
            """)
        try await node.waitForPod("widget-user", seconds: 90) { PodNode.status($0, "app")?.state?.running != nil }
        var logs = ""
        for _ in 0..<50 where !logs.contains("can't open") {
            logs = try await node.kubectl(["logs", "widget-user"])
            try await Task.sleep(for: .milliseconds(200))
        }
        #expect(logs.contains("ids=w1\nwidget-w1\n"), "\(logs)")
        #expect(logs.contains("can't open /dev/widget-w1: No such device or address"), "the device cgroup allows the plugin's node: \(logs)")
        #expect((try? String(contentsOfFile: control + ".prestart", encoding: .utf8)) == "w1\n")
        let user = try await node.pod("widget-user")
        #expect("\(user.status?.containerStatuses?.first?.allocatedResourcesStatus ?? [])".contains("w1"))

        // w0 turns unhealthy: nothing is left to give.
        try "unhealthy w0\n".write(toFile: control, atomically: true, encoding: .utf8)
        for _ in 0..<100 where try await widgets().allocatable != 1 { try await Task.sleep(for: .milliseconds(300)) }
        #expect(try await widgets() == (2, 1))
        try await node.apply("""
            apiVersion: v1
            kind: Pod
            metadata: {name: widget-waiter}
            spec:
              containers:
              - name: app
                image: \(image)
                command: ["sleep", "100000"]
                resources: {limits: {example.com/widget: 1}}
            """)
        let waiter = try await node.waitForPod("widget-waiter", seconds: 30) { $0.status?.conditions?.contains { $0.reason == "Unschedulable" } == true }
        #expect(waiter.status?.conditions?.first { $0.type == "PodScheduled" }?.message?.contains("Insufficient example.com/widget") == true)
        try await node.kubectl(["delete", "pod", "widget-waiter", "--wait=false"])

        // The agent restarts: the plugin registers again, the pod keeps w1.
        node.killAgent()
        try node.startAgent()
        for _ in 0..<150 where try await widgets().allocatable != 1 || !((try? String(contentsOfFile: base + "/plugin.log", encoding: .utf8)) ?? "").contains("registered\nregistered") {
            try await Task.sleep(for: .milliseconds(300))
        }
        let afterRestart = try await widgets()
        #expect(afterRestart == (2, 1), "\(afterRestart)\nplugin log: \((try? String(contentsOfFile: base + "/plugin.log", encoding: .utf8)) ?? "")\nagent log:\n\(node.agentLogTail)")
        #expect(try await node.pod("widget-user").status?.containerStatuses?.first?.restartCount == 0)

        // Registrations the kubelet refuses are refused the same way.
        for (version, resource, expected) in [("v1alpha", "example.com/other", "Unsupported version"),
                                              ("v1beta1", "devices.iotkube.io/i2c", "belongs to the agent's device classes"),
                                              ("v1beta1", "cpu", "not an extended resource name")] {
            let refused = try ServerProcess.run(Self.python, [Self.fixtures + "/device_plugin.py", generated, "--register-only", version, plugins, resource])
            #expect(refused.output.contains("REFUSED INVALID_ARGUMENT") && refused.output.contains(expected), "\(refused.output)")
        }
        await node.shutdown()
    }
}
