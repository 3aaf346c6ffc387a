import Foundation
import IotkubeTestSupport
import KubeModel
import Testing

/// A board that takes no inbound connection (NAT, a firewall): iptables drops every connection
/// to the agent's address and port, so iotkube-server reaches the agent only through the
/// tunnel the agent keeps. Real kubectl, server, agent, registry and containers.
@Suite(.ownThread, .heavy, .serialized,
       .enabled(if: PodNode.available && toolAvailable("iptables"), "needs root, iptables, kubectl, the CNI plugins, docker-registry, umoci, skopeo, busybox-static and curl"))
struct AgentTunnelTests {
    var image: String { (try? PodImageRegistry.shared.get().busybox) ?? "" }

    /// Waits until the agent's log says the tunnel came up `count` times.
    static func waitForTunnel(_ node: PodNode, count: Int, seconds: TimeInterval = 60) async throws {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            let log = (try? String(contentsOfFile: node.agentLog, encoding: .utf8)) ?? ""
            if log.components(separatedBy: "the tunnel to the API server is up").count - 1 >= count { return }
            try await Task.sleep(for: .milliseconds(200))
        }
        throw TestFailure("the tunnel did not come up (\(count) times) within \(Int(seconds)) s; agent log:\n\(node.agentLogTail)")
    }

    @Test func logsExecAndCopyReachABoardThatTakesNoInboundConnection() async throws {
        let node = try await PodNode.make(name: "nat-board")
        try await Self.waitForTunnel(node, count: 1)
        try await node.apply("""
            apiVersion: v1
            kind: Pod
            metadata: {name: talker}
            spec:
              terminationGracePeriodSeconds: 1
              containers:
              - name: main
                image: \(image)
                command: ["sh", "-c", "i=0; while true; do echo line $i; i=$((i+1)); sleep 0.2; done"]
            """)
        try await node.waitForPod("talker") { PodNode.isReady($0) }

        // Inbound connections to the board end here, as behind NAT.
        let address = try await node.kubectl(["get", "node", node.name, "-o", "jsonpath={.status.addresses[?(@.type==\"InternalIP\")].address}"])
        let rule = ["INPUT", "-p", "tcp", "-d", address, "--dport", String(node.port), "-j", "DROP", "-m", "comment", "--comment", "iotkube-tunnel-test"]
        let blocked = try ServerProcess.run("/usr/sbin/iptables", ["-I"] + rule)
        try #require(blocked.status == 0, "iptables: \(blocked.output)")
        defer { _ = try? ServerProcess.run("/usr/sbin/iptables", ["-D"] + rule) }
        let direct = try await ServerProcess.runAsync("/usr/bin/curl", ["-sk", "--max-time", "3", "https://\(address):\(node.port)/healthz"])
        try #require(direct.status == 28, "the direct path must be closed (curl timed out): \(direct)")

        let directory = NSTemporaryDirectory() + "tunnel-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }

        // Logs, followed logs, and exec with both streams and the exit code.
        let logs = try await node.kubectl(["logs", "talker", "--tail", "2"])
        #expect(logs.split(separator: "\n").count == 2 && logs.hasPrefix("line "), "\(logs)")
        let followed = try await PodExecTests.shell(node, "eval \"timeout 3 $KUBECTL logs -f talker --tail 1\"; echo \"rc=$?\"")
        let lines = followed.output.split(separator: "\n").filter { $0.hasPrefix("line ") }
        #expect(lines.count >= 5 && followed.output.hasSuffix("rc=124\n"), "logs -f streams until stopped: \(followed.output)")
        let streams = try await PodExecTests.shell(node, "K exec talker -- sh -c 'echo out; echo err >&2; exit 3' 2>'\(directory)/err'; echo \"rc=$?\"")
        let errors = try String(contentsOfFile: directory + "/err", encoding: .utf8)
        #expect(streams.output == "out\nrc=3\n" && errors.hasPrefix("err\n") && errors.contains("command terminated with exit code 3"),
                "\(streams.output)\nstderr: \(errors)\nagent log:\n\(node.agentLogTail)")

        // The node proxy (what metrics collectors read) goes through the tunnel too; a node's
        // own credentials may not use it (it reaches every pod's logs on that node).
        let resource = try await node.kubectl(["get", "--raw", "/api/v1/nodes/\(node.name)/proxy/metrics/resource"])
        #expect(resource.contains("container_memory_working_set_bytes{container=\"main\",namespace=\"default\",pod=\"talker\""), "\(resource.prefix(2000))")
        #expect(try await node.kubectl(["get", "--raw", "/api/v1/nodes/\(node.name)/proxy/healthz"]) == "ok")
        let kubectl = try #require(ServerProcess.kubectlPath)
        let asNode = try await ServerProcess.runAsync(kubectl, ["--kubeconfig", node.configDirectory + "/kubeconfig", "get", "--raw", "/api/v1/nodes/\(node.name)/proxy/healthz"])
        #expect(asNode.status != 0 && asNode.output.contains("forbidden"), "\(asNode.output)")

        // An exec'd command starts with no signal blocked or ignored (the agent's threads block
        // signals and it ignores SIGPIPE; neither may reach the container).
        let signals = try await node.kubectl(["exec", "talker", "--", "grep", "-E", "^Sig(Blk|Ign)", "/proc/self/status"])
        #expect(signals == "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n", "\(signals)")

        // Only nodes open tunnels: not an administrator, not a bootstrap token, not anonymous.
        let admin = try await node.serverKubectl(["get", "--raw", "/iotkube/v1/tunnel"])
        #expect(admin.status != 0 && admin.output.contains("cannot open a node tunnel"), "admin: \(admin.output)")
        let token = String(try JoinTests.token(node.server).split(separator: ".").suffix(2).joined(separator: "."))
        let upgrade = ["-H", "Connection: Upgrade", "-H", "Upgrade: websocket", "-H", "Sec-WebSocket-Version: 13", "-H", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
                       "-H", "Sec-WebSocket-Protocol: tunnel.v1.iotkube.io", "--max-time", "5"]
        let bootstrap = try await ServerProcess.runAsync("/usr/bin/curl", ["-sk", "-H", "Authorization: Bearer \(token)"] + upgrade + ["https://127.0.0.1:\(node.server.port)/iotkube/v1/tunnel"])
        #expect(bootstrap.output.contains("cannot open a node tunnel"), "bootstrap token: \(bootstrap.output)")
        let anonymous = try await ServerProcess.runAsync("/usr/bin/curl", ["-sk"] + upgrade + ["https://127.0.0.1:\(node.server.port)/iotkube/v1/tunnel"])
        #expect(anonymous.output.contains("\"code\":401") || anonymous.output.contains("\"code\":403"), "anonymous: \(anonymous.output)")

        // kubectl 1.20 speaks SPDY/3.1: the same exec, through the server and the tunnel.
        let old = try #require(ServerProcess.findExecutable("kubectl-1.20"), "kubectl 1.20 (packaging/install-deps.sh --test)")
        let spdy = try await ServerProcess.runAsync("/bin/sh", ["-c", """
            printf 'from stdin\\n' | '\(old)' --kubeconfig '\(node.server.kubeconfig)' exec -i talker -- sh -c 'cat; echo err >&2; exit 4' 2>'\(directory)/spdy-err'
            echo "rc=$?"
            """])
        let spdyErrors = (try? String(contentsOfFile: directory + "/spdy-err", encoding: .utf8)) ?? ""
        #expect(spdy.output == "from stdin\nrc=4\n" && spdyErrors.hasPrefix("err\n") && spdyErrors.contains("command terminated with exit code 4"),
                "\(spdy.output)\nstderr: \(spdyErrors)\nagent log:\n\(node.agentLogTail)")
        let spdyOut = try await ServerProcess.runAsync(old, ["--kubeconfig", node.server.kubeconfig, "exec", "talker", "--", "sh", "-c", "head -c 3000000 /dev/zero | tr '\\0' x | wc -c"])
        #expect(spdyOut.output.trimmingCharacters(in: .whitespacesAndNewlines) == "3000000", "\(spdyOut.output)")

        // 10 MB each way through stdin and stdout; `cp` both ways.
        let moved = try await PodExecTests.shell(node, """
            cd '\(directory)' && head -c 10000000 /dev/urandom > in && sha256sum < in | cut -c1-64
            K exec -i talker -- sh -c 'cat > /tmp/in; sha256sum < /tmp/in' < in | cut -c1-64
            K exec talker -- cat /tmp/in | sha256sum | cut -c1-64
            K cp in talker:/tmp/copied && K cp talker:/tmp/copied back && cmp in back && echo copied
            """, timeout: 300)
        let hashes = moved.output.split(separator: "\n").filter { $0.count == 64 || $0 == "copied" }
        #expect(hashes.count == 4 && hashes[0] == hashes[1] && hashes[0] == hashes[2] && hashes[3] == "copied", "\(moved.output)")

        // Concurrent streams share the tunnel, each with its own bytes.
        let concurrent = try await PodExecTests.shell(node, """
            cd '\(directory)'
            for i in 1 2 3 4 5 6; do (K exec talker -- sh -c "seq $i 7 400000" | sha256sum | cut -c1-64 > got$i; seq $i 7 400000 | sha256sum | cut -c1-64 > want$i) & done
            wait
            for i in 1 2 3 4 5 6; do cmp -s got$i want$i && echo same; done
            """, timeout: 300)
        #expect(concurrent.output == String(repeating: "same\n", count: 6), "\(concurrent.output)")

        // The server restarts: the agent reconnects and streams work again.
        try await onOwnThread { try node.server.restart() }
        try await Self.waitForTunnel(node, count: 2)
        let afterRestart = try await node.kubectl(["exec", "talker", "--", "echo", "back"])
        #expect(afterRestart == "back\n")

        // The agent dies mid-stream: kubectl's exec ends (it does not hang), and after the
        // agent starts again the tunnel returns.
        async let hanging = PodExecTests.shell(node, "K exec talker -- sleep 1000; echo \"rc=$?\"", timeout: 120)
        try await Task.sleep(for: .seconds(3))
        node.killAgent()
        let ended = try await hanging
        #expect(!ended.output.contains("rc=0") && ended.output.contains("rc="), "\(ended.output)")
        try node.startAgent()
        try await Self.waitForTunnel(node, count: 3)
        #expect(try await node.kubectl(["exec", "talker", "--", "echo", "again"]) == "again\n")
        await node.shutdown()
    }

}
