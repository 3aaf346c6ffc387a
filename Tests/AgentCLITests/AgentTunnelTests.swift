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

    /// Drops every inbound connection to the agent's address and port, as NAT does; returns
    /// the iptables rule to delete afterwards.
    static func blockInbound(_ node: PodNode) async throws -> [String] {
        let address = try await node.kubectl(["get", "node", node.name, "-o", "jsonpath={.status.addresses[?(@.type==\"InternalIP\")].address}"])
        let rule = ["INPUT", "-p", "tcp", "-d", address, "--dport", String(node.port), "-j", "DROP", "-m", "comment", "--comment", "iotkube-tunnel-test"]
        let blocked = try ServerProcess.run("/usr/sbin/iptables", ["-I"] + rule)
        try #require(blocked.status == 0, "iptables: \(blocked.output)")
        let direct = try await ServerProcess.runAsync("/usr/bin/curl", ["-sk", "--max-time", "3", "https://\(address):\(node.port)/healthz"])
        if direct.status != 28 { _ = try? ServerProcess.run("/usr/sbin/iptables", ["-D"] + rule) }
        try #require(direct.status == 28, "the direct path must be closed (curl timed out): \(direct)")
        return rule
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
        try await node.waitForClusterSignedServingCertificate()

        let rule = try await Self.blockInbound(node)
        defer { _ = try? ServerProcess.run("/usr/sbin/iptables", ["-D"] + rule) }

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

    /// Echoes each connection back; sends `size` bytes on the first and 200 kB on the others,
    /// all at once, each half-closed after sending; prints one line per connection.
    static let echoClient = """
        import hashlib, os, socket, sys, threading
        port, count, size = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
        results = [None] * count
        def one(i):
            data = os.urandom(size if i == 0 else 200000)
            s = socket.create_connection(("127.0.0.1", port), timeout=120)
            def send():
                s.sendall(data)
                s.shutdown(socket.SHUT_WR)
            sender = threading.Thread(target=send)
            sender.start()
            got = bytearray()
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                got += chunk
            sender.join()
            s.close()
            results[i] = "same" if hashlib.sha256(got).digest() == hashlib.sha256(data).digest() else "differ %d: %d of %d bytes" % (i, len(got), len(data))
        threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
        for t in threads: t.start()
        for t in threads: t.join()
        print("\\n".join(str(r) for r in results))
        """

    /// A WebSocket client of the channel protocol (as the Python and JavaScript clients speak
    /// it): port-forwards to the ports in the query, prints each frame as `<channel> <payload>`.
    static let channelClient = #"""
        import base64, os, socket, ssl, struct, sys
        host, port, ca, cert, key, path, protocol = sys.argv[1:8]
        context = ssl.create_default_context(cafile=ca)
        context.check_hostname = False
        context.load_cert_chain(cert, key)
        s = context.wrap_socket(socket.create_connection((host, int(port)), timeout=20), server_hostname=host)
        s.sendall(("GET %s HTTP/1.1\r\nHost: %s:%s\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
                   "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Protocol: %s\r\n\r\n" % (path, host, port, base64.b64encode(os.urandom(16)).decode(), protocol)).encode())
        data = b""
        while b"\r\n\r\n" not in data:
            data += s.recv(4096)
        head, data = data.split(b"\r\n\r\n", 1)
        print(head.split(b"\r\n")[0].decode())
        text = protocol.startswith("v4.base64")
        def send(payload, channel):
            if text:
                body, opcode = (chr(48 + channel) + base64.b64encode(payload).decode()).encode(), 1
            else:
                body, opcode = bytes([channel]) + payload, 2
            mask = os.urandom(4)
            n = len(body)
            header = bytes([0x80 | opcode]) + (bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + struct.pack(">H", n))
            s.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(body)))
        def frame():
            global data
            while True:
                if len(data) >= 2:
                    n, offset = data[1] & 0x7F, 2
                    if n == 126:
                        n, offset = struct.unpack(">H", data[2:4])[0], 4
                    elif n == 127:
                        n, offset = struct.unpack(">Q", data[2:10])[0], 10
                    if len(data) >= offset + n:
                        opcode, payload, data = data[0] & 0x0F, data[offset:offset + n], data[offset + n:]
                        return opcode, payload
                chunk = s.recv(65536)
                if not chunk:
                    return None
                data += chunk
        request = b"GET /hello.txt HTTP/1.0\r\n\r\n"
        sent = False
        while (f := frame()) is not None:
            opcode, payload = f
            if opcode == 8:
                print("close")
                break
            if text:
                channel, payload = payload[0] - 48, base64.b64decode(payload[1:])
            else:
                channel, payload = payload[0], payload[1:]
            print(channel, payload.hex() if len(payload) == 2 else payload.decode(errors="replace").replace("\r\n", "|"))
            sys.stdout.flush()
            if channel == 0 and len(payload) == 2 and not sent:
                send(request, 0)
                sent = True
        """#

    @Test func portForwardAndAttachReachABoardThatTakesNoInboundConnection() async throws {
        let node = try await PodNode.make(name: "nat-forward")
        try await Self.waitForTunnel(node, count: 1)
        // An echo server on every address, and a web server on the pod's loopback only (which
        // only a connection made inside the pod's network namespace reaches).
        try await node.apply("""
            apiVersion: v1
            kind: Pod
            metadata: {name: services}
            spec:
              terminationGracePeriodSeconds: 1
              containers:
              - name: echo
                image: \(image)
                command: ["nc", "-ll", "-p", "8080", "-e", "cat"]
              - name: web
                image: \(image)
                command: ["sh", "-c", "mkdir -p /www && echo inside the pod > /www/hello.txt && exec httpd -f -p 127.0.0.1:8081 -h /www"]
              - name: reader
                image: \(image)
                stdin: true
                stdinOnce: true
                command: ["sh", "-c", "while read line; do echo \\"got: $line\\"; done; echo stdin closed"]
              - name: terminal
                image: \(image)
                stdin: true
                tty: true
                command: ["sh", "-c", "read line; echo \\"[$line] $(stty size) $(tty)\\""]
            """)
        try await node.waitForPod("services") { PodNode.isReady($0) }
        try await node.waitForClusterSignedServingCertificate()
        let rule = try await Self.blockInbound(node)
        defer { _ = try? ServerProcess.run("/usr/sbin/iptables", ["-D"] + rule) }

        let directory = NSTemporaryDirectory() + "forward-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try Self.echoClient.write(toFile: directory + "/echo.py", atomically: true, encoding: .utf8)
        let (echoPort, webPort, closedPort, oldPort) = (try ServerProcess.freePort(), try ServerProcess.freePort(), try ServerProcess.freePort(), try ServerProcess.freePort())
        let old = try #require(ServerProcess.findExecutable("kubectl-1.20"), "kubectl 1.20 (packaging/install-deps.sh --test)")

        // kubectl 1.37 (SPDY inside a WebSocket to the server, SPDY from the server to the
        // agent through the tunnel): the loopback-only web server, then 10 MB each way on one
        // connection while five more run at once; a closed port fails alone; kubectl 1.20
        // (plain SPDY) on the same pod.
        let forwarded = try await PodExecTests.shell(node, """
            cd '\(directory)'
            wait_for() { for i in $(seq 100); do grep -q "Forwarding from 127.0.0.1:$2" "$1" && return 0; sleep 0.2; done; cat "$1"; return 1; }
            K port-forward pod/services \(echoPort):8080 \(webPort):8081 > pf.log 2>&1 & pf=$!
            wait_for pf.log \(webPort) || exit 1
            echo "web: $(curl -s --max-time 20 http://127.0.0.1:\(webPort)/hello.txt)"
            python3 echo.py \(echoPort) 6 10000000
            K port-forward pod/services \(closedPort):9999 > closed.log 2>&1 & closed=$!
            wait_for closed.log \(closedPort) || exit 1
            curl -s --max-time 20 http://127.0.0.1:\(closedPort)/ > /dev/null; echo "closed: rc=$?"
            sleep 1
            echo "after: $(curl -s --max-time 20 http://127.0.0.1:\(webPort)/hello.txt)"
            '\(old)' --kubeconfig '\(node.server.kubeconfig)' port-forward pod/services \(oldPort):8081 > old.log 2>&1 & oldpf=$!
            wait_for old.log \(oldPort) || exit 1
            echo "old: $(curl -s --max-time 20 http://127.0.0.1:\(oldPort)/hello.txt)"
            kill $pf $closed $oldpf 2>/dev/null
            echo "--- closed.log"; cat closed.log
            """, timeout: 300)
        let output = forwarded.output
        #expect(output.contains("web: inside the pod\n"), "\(output)\nagent log:\n\(node.agentLogTail)")
        #expect(output.contains("same\nsame\nsame\nsame\nsame\nsame\n"), "six echoed connections: \(output)")
        #expect(output.contains("closed: rc=") && !output.contains("closed: rc=0\n"), "\(output)")
        #expect(output.contains("error forwarding port 9999 to pod services") && output.contains("Connection refused"), "the refusal reaches kubectl: \(output)")
        #expect(output.contains("after: inside the pod\n"), "the other forward goes on: \(output)")
        #expect(output.contains("old: inside the pod\n"), "kubectl 1.20 over SPDY: \(output)")

        // Attach: stdin reaches the container's own process and its output comes back; the
        // client's end of stdin closes the container's (stdinOnce), the process exits and the
        // attach ends by itself.
        let attached = try await PodExecTests.shell(node, "printf 'hello\\nworld\\n' | K attach -i services -c reader 2>&1; echo \"rc=$?\"", timeout: 60)
        #expect(attached.output.contains("got: hello\ngot: world\nstdin closed\n") && attached.output.hasSuffix("rc=0\n"), "\(attached.output)\nagent log:\n\(node.agentLogTail)")

        // A terminal container: kubectl on a pty (script) attaches, its size reaches the
        // container's terminal, typed input comes back through the terminal.
        let terminal = try await PodExecTests.shell(node, """
            (sleep 3; printf 'hello\\r'; sleep 5) | script -qec "stty rows 33 cols 101; $KUBECTL attach -it services -c terminal" /dev/null
            echo "rc=$?"
            """, timeout: 60)
        #expect(terminal.output.contains("[hello] 33 101 /dev/pts/0\r\n"), "\(terminal.output)\nagent log:\n\(node.agentLogTail)")
        // (The container exited: its log is the current one until it restarts, then the previous.)
        var terminalLog = ""
        for _ in 0..<30 where !terminalLog.contains("[hello]") {
            terminalLog = (try? await node.kubectl(["logs", "services", "-c", "terminal"])) ?? ""
            terminalLog += (try? await node.kubectl(["logs", "services", "-c", "terminal", "--previous"])) ?? ""
            if !terminalLog.contains("[hello]") { try await Task.sleep(for: .milliseconds(500)) }
        }
        #expect(terminalLog.contains("[hello] 33 101 /dev/pts/0"), "a terminal's output is logged: \(terminalLog)")

        // The WebSocket channel protocol, binary and base64: the ports' preamble, the pod's
        // loopback web server through channel 0, a closed port's error on its channel 3.
        try Self.channelClient.write(toFile: directory + "/channels.py", atomically: true, encoding: .utf8)
        let credentials = try await PodExecTests.shell(node, """
            cd '\(directory)'
            K config view --raw -o jsonpath='{.clusters[0].cluster.certificate-authority-data}' | base64 -d > ca.pem
            K config view --raw -o jsonpath='{.users[0].user.client-certificate-data}' | base64 -d > cert.pem
            K config view --raw -o jsonpath='{.users[0].user.client-key-data}' | base64 -d > key.pem
            """)
        #expect(credentials.status == 0, "\(credentials.output)")
        for channelProtocol in ["v4.channel.k8s.io", "v4.base64.channel.k8s.io"] {
            let channels = try await ServerProcess.runAsync("/usr/bin/python3", [
                directory + "/channels.py", "127.0.0.1", String(node.server.port), directory + "/ca.pem", directory + "/cert.pem", directory + "/key.pem",
                "/api/v1/namespaces/default/pods/services/portforward?ports=8081,9999", channelProtocol,
            ], timeout: 60)
            let lines = channels.output.split(separator: "\n").map(String.init)
            #expect(lines.first == "HTTP/1.1 101 Switching Protocols", "\(channelProtocol): \(channels.output)")
            // 8081 and 9999 as two little-endian bytes on each port's two channels.
            #expect(["0 911f", "1 911f", "2 0f27", "3 0f27"].allSatisfy(lines.contains), "\(channelProtocol): \(channels.output)")
            #expect(lines.contains { $0.hasPrefix("0 ") && $0.contains("inside the pod") }, "\(channelProtocol): \(channels.output)")
            #expect(lines.contains { $0.hasPrefix("3 error forwarding port 9999 to pod services") }, "\(channelProtocol): \(channels.output)\nagent log:\n\(node.agentLogTail)")
        }

        // A node's own credentials may not forward into pods; a bad port is the API's 422.
        let kubectl = try #require(ServerProcess.kubectlPath)
        let asNode = try await ServerProcess.runAsync(kubectl, ["--kubeconfig", node.configDirectory + "/kubeconfig", "port-forward", "pod/services", "\(try ServerProcess.freePort()):8080"], timeout: 30)
        #expect(asNode.status != 0 && asNode.output.contains("forbidden"), "\(asNode.output)")
        let badPort = try await node.serverKubectl(["create", "--raw", "/api/v1/namespaces/default/pods/services/portforward?ports=70000", "-f", "/dev/null"])
        #expect(badPort.output.contains("must be between 1 and 65535"), "\(badPort.output)")
        // A garbled upgrade gets an error, and the agent keeps serving.
        let garbled = try await node.serverKubectl(["get", "--raw", "/api/v1/namespaces/default/pods/services/portforward"])
        #expect(garbled.status != 0 && garbled.output.contains("upgrade"), "\(garbled.output)")
        await node.shutdown()
    }
}
