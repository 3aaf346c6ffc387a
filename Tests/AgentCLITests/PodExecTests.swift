import Foundation
import IotkubeTestSupport
import KubeModel
import Testing

/// `kubectl exec` end to end: real kubectl (WebSocket, v5.channel.k8s.io) against a real
/// iotkube-server, which proxies the upgrade to a real agent, which runs the command inside a
/// real container's namespaces with the container's user and environment.
@Suite(.ownThread, .heavy, .serialized, .enabled(if: PodNode.available, "needs root, kubectl, the CNI plugins, docker-registry, umoci, skopeo, busybox-static and curl"))
struct PodExecTests {
    var image: String { (try? PodImageRegistry.shared.get().busybox) ?? "" }

    /// Runs `script` in sh with `$K` as kubectl against the node's server; exit status and output.
    /// The scripts reach the agent (exec, logs, port-forward): first wait for its cluster-signed
    /// serving certificate, as `PodNode.serverKubectl` does.
    static func shell(_ node: PodNode, _ script: String, timeout: TimeInterval = 60) async throws -> (status: Int32, output: String) {
        try await node.waitForClusterSignedServingCertificate()
        let kubectl = try #require(ServerProcess.kubectlPath)
        let prelude = "K() { '\(kubectl)' --kubeconfig '\(node.server.kubeconfig)' \"$@\"; }\nKUBECTL=\"'\(kubectl)' --kubeconfig '\(node.server.kubeconfig)'\"\n"
        return try await ServerProcess.runAsync("/bin/sh", ["-c", prelude + script], timeout: timeout)
    }

    @Test func execRunsInTheContainerWithItsStreamsExitCodeUserAndTerminal() async throws {
        let node = try await PodNode.make(name: "exec-board")
        try await node.apply("""
            apiVersion: v1
            kind: Pod
            metadata: {name: shell}
            spec:
              terminationGracePeriodSeconds: 1
              securityContext: {runAsUser: 1000, runAsGroup: 1000, seccompProfile: {type: RuntimeDefault}}
              containers:
              - name: main
                image: \(image)
                command: ["sleep", "100000"]
                env: [{name: GREETING, value: "hello from the pod"}]
              - name: side
                image: \(image)
                command: ["sleep", "100000"]
            ---
            apiVersion: v1
            kind: Pod
            metadata: {name: waiting}
            spec:
              terminationGracePeriodSeconds: 1
              initContainers:
              - {name: setup, image: \(image), command: ["sleep", "100000"]}
              containers:
              - {name: app, image: \(image), command: ["sleep", "100000"]}
            ---
            apiVersion: v1
            kind: Pod
            metadata: {name: done}
            spec:
              restartPolicy: Never
              containers:
              - {name: once, image: \(image), command: ["true"]}
            """)
        try await node.waitForPod("shell") { PodNode.isReady($0) }
        let directory = NSTemporaryDirectory() + "exec-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }

        // Separate stdout and stderr, the container's environment, user and pid namespace, and
        // the exit code as kubectl reports it.
        let streams = try await Self.shell(node, """
            K exec shell -c main -- sh -c 'echo out; echo err >&2; echo "$GREETING"; id -u; cat /proc/1/cmdline | tr "\\0" " "; echo; hostname; exit 3' \
              > '\(directory)/out' 2> '\(directory)/err'
            echo "rc=$?"
            """)
        let output = try String(contentsOfFile: directory + "/out", encoding: .utf8)
        let errors = try String(contentsOfFile: directory + "/err", encoding: .utf8)
        #expect(streams.output == "rc=3\n", "\(streams.output)\nstderr: \(errors)\nagent log:\n\(node.agentLogTail)")
        #expect(output == "out\nhello from the pod\n1000\nsleep 100000 \nshell\n", "\(output)")
        #expect(errors.hasPrefix("err\n") && errors.contains("command terminated with exit code 3"), "\(errors)")

        // The command runs under the container's seccomp filter (the filter file is the host's:
        // looked up inside the container it was missing, or planted by it).
        let filtered = try await Self.shell(node, "K exec shell -c main -- grep Seccomp: /proc/self/status")
        #expect(filtered.output == "Seccomp:\t2\n", "\(filtered.output)")

        // stdin to the end (v5 closes it), and a success.
        let input = try await Self.shell(node, "printf 'line one\\nline two\\n' | K exec -i shell -c main -- sh -c 'cat; echo done'")
        #expect(input.status == 0 && input.output == "line one\nline two\ndone\n", "\(input.output)\n\(node.agentLogTail)")
        // 1 MB through stdin and back out.
        let bulk = try await Self.shell(node, "head -c 1048576 /dev/urandom | base64 > '\(directory)/in'; K exec -i shell -c main -- cat < '\(directory)/in' | cmp - '\(directory)/in' && echo same")
        #expect(bulk.output.hasSuffix("same\n"), "\(bulk.output)\n\(node.agentLogTail)")

        // kubectl cp both ways (exec with the container's tar).
        let copied = try await Self.shell(node, """
            cd '\(directory)' && printf 'from the host\\n' > up.txt
            K cp up.txt shell:/tmp/up.txt -c main && K cp shell:/tmp/up.txt down.txt -c main 2>&1
            K cp shell:/etc/hostname hostname.txt -c main 2>&1
            echo; cat down.txt hostname.txt
            """)
        #expect(copied.output.hasSuffix("from the host\nshell\n"), "\(copied.output)")

        // A terminal: kubectl itself on a pty (script), the command on one from the
        // container's devpts, its size set by kubectl's resize message.
        let terminal = try await Self.shell(node, """
            stty_cmd='tty; stty size; exit 4'
            script -qec "stty rows 33 cols 101; $KUBECTL exec -it shell -c main -- sh -c '$stty_cmd'" /dev/null < /dev/null
            echo "rc=$?"
            """)
        // (script echoes what it passes on, a NUL among it at times: only the lines matter.)
        #expect(terminal.output.contains("/dev/pts/0\r\n") && terminal.output.contains("33 101\r\n"), "\(terminal.output)\nagent log:\n\(node.agentLogTail)")
        #expect(terminal.output.contains("rc=4"), "\(terminal.output)")

        // kubectl top pod: the agent pushes PodMetrics from the containers' cgroups.
        var top = ""
        for _ in 0..<30 {
            top = (try? await node.kubectl(["top", "pod", "shell", "--containers"])) ?? ""
            if top.contains("main"), top.contains("side") { break }
            try await Task.sleep(for: .seconds(1))
        }
        #expect(top.range(of: #"shell\s+main\s+\d+m\s+\d+Mi"#, options: .regularExpression) != nil, "\(top)")

        // Clear errors, and the agent keeps serving.
        let missing = try await node.serverKubectl(["exec", "shell", "-c", "nope", "--", "true"])
        #expect(missing.status != 0 && missing.output.contains("container nope is not valid for pod shell"), "\(missing.output)")
        let notFound = try await node.serverKubectl(["exec", "shell", "-c", "main", "--", "/no/such/program"])
        #expect(notFound.status != 0 && notFound.output.contains("/no/such/program"), "\(notFound.output)")
        try await node.waitForPod("done") { $0.status?.phase == .succeeded }
        let completed = try await node.serverKubectl(["exec", "done", "--", "true"])
        #expect(completed.status != 0 && completed.output.contains("cannot exec into a container in a completed pod"), "\(completed.output)")
        // The agent's refusal reaches kubectl, also after its retry over SPDY.
        let notStarted = try await node.serverKubectl(["exec", "waiting", "-c", "app", "--", "true"])
        #expect(notStarted.status != 0 && notStarted.output.contains("container \"app\" in pod \"default/waiting\" is not running on this node"), "\(notStarted.output)")
        let plain = try await node.serverKubectl(["get", "--raw", "/api/v1/namespaces/default/pods/shell/exec?command=true&stdout=true&container=main"])
        #expect(plain.status != 0 && plain.output.contains("exec is served over WebSocket"), "\(plain.output)")
        let absent = try await node.serverKubectl(["exec", "ghost", "--", "true"])
        #expect(absent.status != 0 && absent.output.contains("not found"), "\(absent.output)")
        // A node's credentials may not exec into pods, not even its own.
        let kubectl = try #require(ServerProcess.kubectlPath)
        let asNode = try await ServerProcess.runAsync(kubectl, ["--kubeconfig", node.configDirectory + "/kubeconfig", "exec", "shell", "-c", "main", "--", "true"])
        #expect(asNode.status != 0 && asNode.output.contains("forbidden"), "\(asNode.output)")
        let after = try await Self.shell(node, "K exec shell -c side -- echo still serving")
        #expect(after.output == "still serving\n", "\(after.output)")
        await node.shutdown()
    }
}
