import Foundation
import IotkubeTestSupport
import OCI
import PodNetwork
import Runtime
import Testing

/// `iotkube-agent reset` on a board with a running container, a pod sandbox and a tmpfs volume.
@Suite(.ownThread, .enabled(if: getuid() == 0 && toolAvailable("busybox"), "needs root (namespaces, mounts) and busybox-static"))
struct ResetTests {
    @Test func resetUndoesJoinAndEverythingTheAgentMade() throws {
        let agent = ContainerFixture.agent
        let base = ContainerFixture.base("reset")
        let config = base + "/etc", state = base + "/state with space", runtimeRoot = base + "/runtime"
        try FileManager.default.createDirectory(atPath: config, withIntermediateDirectories: true)
        try "nodeName: pi\nserver: https://192.0.2.1:6443\nkubeconfig: \(config)/kubeconfig\nstateDir: \"\(state)\"\n".write(toFile: config + "/agent.yaml", atomically: true, encoding: .utf8)
        try "apiVersion: v1\nkind: Config\n".write(toFile: config + "/kubeconfig", atomically: true, encoding: .utf8)
        // A sandbox and a tmpfs volume under the state directory, and a running container.
        let sandbox = try PodSandbox.create(directory: state + "/pods/p1/sandbox", hostname: "p1")
        try FileManager.default.createDirectory(atPath: state + "/pods/p1/volumes/secret", withIntermediateDirectories: true)
        #expect(try ServerProcess.run("/bin/mount", ["-t", "tmpfs", "tmpfs", state + "/pods/p1/volumes/secret"]).status == 0)
        let rootfs = base + "/rootfs"
        try ContainerFixture.busyboxRoot(at: rootfs, applets: ["sleep"])
        var spec = DefaultSpec.make(args: ["sleep", "1000"])
        spec.root = RuntimeSpec.Root(path: rootfs, readonly: true)
        spec.linux?.cgroupsPath = "/iotkube-test/reset-\(UUID().uuidString)"
        let namespaces = (spec.linux?.namespaces ?? []).map { $0.type == "network" ? RuntimeSpec.Namespace(type: "network", path: sandbox.networkNamespace) : $0 }
        spec.linux?.namespaces = namespaces
        let bundle = try ContainerFixture.bundle(spec, in: base)
        let runtime = BuiltinRuntime(root: runtimeRoot, helper: agent)
        let _: ContainerRecord = try runtime.create(id: "pod-container", bundle: bundle, options: BuiltinRuntime.CreateOptions(logPath: base + "/log"))
        try runtime.start(id: "pod-container")
        let pid = try #require(try runtime.state(id: "pod-container").pid)

        // Without --force and without a terminal, nothing happens.
        let refused = try ServerProcess.run(agent, ["reset", "--config-dir", config, "--runtime-root", runtimeRoot])
        #expect(refused.status != 0 && refused.output.contains("run with --force to confirm"), "\(refused.output)")
        #expect(FileManager.default.fileExists(atPath: config + "/kubeconfig") && kill(pid, 0) == 0)

        let reset = try ServerProcess.run(agent, ["reset", "--config-dir", config, "--runtime-root", runtimeRoot, "--force"])
        #expect(reset.status == 0, "\(reset.output)")
        #expect(reset.output.contains("deleted container pod-container") && reset.output.contains("unmounted \(state)/pods/p1/volumes/secret"), "\(reset.output)")
        #expect(reset.output.contains("unmounted \(state)/pods/p1/sandbox/net") && reset.output.hasSuffix("reset done: join again with `iotkube-agent join <token>`\n"))
        #expect(kill(pid, 0) != 0, "the container's process is gone")
        for path in [config + "/agent.yaml", config + "/kubeconfig", state, runtimeRoot] {
            #expect(!FileManager.default.fileExists(atPath: path), "\(path) removed")
        }
        #expect(try !String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8).contains("iotkube-reset-"), "no mount left")
    }
}
