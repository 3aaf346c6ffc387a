import Foundation
import IotkubeTestSupport
import KubeModel
import PodNetwork
import Testing

/// Services on a real board: a real agent as the node's service proxy (nftables) and cluster
/// DNS, real pods from a real registry. A client pod reaches two web pods by name through their
/// service; the node port answers from the host; a pod reaches itself through its service; a
/// pod failing its readiness probe stops getting traffic; scaling to zero and back; with the
/// API gone, names still resolve and traffic still flows; create/delete cycles leave no rule.
@Suite(.ownThread, .heavy, .serialized, .enabled(if: PodNode.available && NFTablesProxy.find() != nil,
                                                  "needs root, nft, kubectl, the CNI plugins, docker-registry, umoci, skopeo, busybox-static and curl"))
struct ServicePodTests {
    /// The client's log lines written after `since` (seconds since 1970): "time web=<answer> dns=<address>".
    static func clientLines(_ path: String, since: Int) -> [String] {
        let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").map(String.init).filter { line in (Int(line.split(separator: " ").first ?? "") ?? 0) > since }
    }

    static func waitFor(_ seconds: TimeInterval, _ condition: () throws -> Bool) async throws -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try condition() { return true }
            try await Task.sleep(for: .milliseconds(500))
        }
        return try condition()
    }

    static var now: Int { Int(Date().timeIntervalSince1970) }

    @Test func podsReachServicesByNameThroughTheBoardsProxy() async throws {
        let shared = NSTemporaryDirectory() + "iotkube-svc-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: shared, withIntermediateDirectories: true)
        defer {
            if ProcessInfo.processInfo.environment["IOTKUBE_KEEP_TEST_NODES"] != "1" { try? FileManager.default.removeItem(atPath: shared) }
            if let nft = NFTablesProxy.find() { NFTablesProxy.remove(nft: nft) }
            NodeLocalAddress.remove("169.254.20.10")
        }
        let node = try await PodNode.make(name: "service-board", configuration: "serviceProxy: true\nallowedHostPaths: [\"\(shared)\"]")
        let image = node.registry.busybox
        try await node.apply("""
            apiVersion: apps/v1
            kind: Deployment
            metadata: {name: web}
            spec:
              replicas: 2
              selector: {matchLabels: {app: web}}
              template:
                metadata: {labels: {app: web}}
                spec:
                  terminationGracePeriodSeconds: 1
                  containers:
                  - name: httpd
                    image: "\(image)"
                    command: [sh, -c, "mkdir -p /www && hostname > /www/index.html && touch /www/ready && exec httpd -f -p 8080 -h /www"]
                    ports: [{name: http, containerPort: 8080}]
                    readinessProbe: {exec: {command: [test, -f, /www/ready]}, periodSeconds: 1, failureThreshold: 1}
            ---
            apiVersion: v1
            kind: Service
            metadata: {name: web}
            spec: {selector: {app: web}, ports: [{name: http, port: 80, targetPort: http}]}
            ---
            apiVersion: v1
            kind: Service
            metadata: {name: web-np}
            spec: {type: NodePort, selector: {app: web}, ports: [{port: 80, targetPort: 8080}]}
            """)
        #expect(try await node.kubectl(["rollout", "status", "deployment/web", "--timeout=180s"]).contains("successfully rolled out"))
        let webPods = try await node.kubectl(["get", "pods", "-l", "app=web", "-o", "jsonpath={.items[*].metadata.name}"]).split(separator: " ").map(String.init)
        try #require(webPods.count == 2)
        let clusterIP = try await node.kubectl(["get", "svc", "web", "-o", "jsonpath={.spec.clusterIP}"])

        // A client asking for the service by name every half second, logging answers to the host.
        try await node.apply("""
            apiVersion: v1
            kind: Pod
            metadata: {name: client}
            spec:
              terminationGracePeriodSeconds: 1
              volumes: [{name: shared, hostPath: {path: "\(shared)"}}]
              containers:
              - name: client
                image: "\(image)"
                volumeMounts: [{name: shared, mountPath: /shared}]
                command: [sh, -c, "while true; do w=$(timeout 5 wget -q -O - http://web/ 2>&1 | head -n 1); d=$(timeout 5 nslookup web.default.svc.cluster.local 2>&1 | grep -A1 '^Name:' | tail -n 1); echo \\"$(date +%s) web=$w dns=$d\\" >> /shared/log; sleep 0.5; done"]
            """)
        let log = shared + "/log"
        let start = Self.now
        let bothAnswered = try await Self.waitFor(120) {
            let answers = Set(Self.clientLines(log, since: start).compactMap { $0.split(separator: " ").first { $0.hasPrefix("web=") }.map { String($0.dropFirst(4)) } })
            return answers.isSuperset(of: Set(webPods.map { "\($0)" }))
        }
        #expect(bothAnswered, "client log: \(Self.clientLines(log, since: start).suffix(5))\nagent: \(node.agentLogTail)")
        #expect(Self.clientLines(log, since: start).last?.contains("dns=Address: \(clusterIP)") == true, "\(Self.clientLines(log, since: start).suffix(3))")

        // The node port from the host, on the board's own address.
        let nodePort = try await node.kubectl(["get", "svc", "web-np", "-o", "jsonpath={.spec.ports[0].nodePort}"])
        let hostAddress = try await node.kubectl(["get", "node", node.name, "-o", #"jsonpath={.status.addresses[?(@.type=="InternalIP")].address}"#])
        let fromHost = try ServerProcess.run("/usr/bin/curl", ["-sS", "-m", "10", "http://\(hostAddress):\(nodePort)/"])
        #expect(webPods.contains(fromHost.output.trimmingCharacters(in: .whitespacesAndNewlines)), "\(fromHost.output)")

        // A pod reaching itself (and its sibling) through its own service: hairpin.
        for _ in 0..<6 {
            let answer = try await node.serverKubectl(["exec", webPods[0], "--", "wget", "-q", "-O", "-", "http://\(clusterIP)/"])
            #expect(answer.status == 0 && webPods.contains(answer.output.trimmingCharacters(in: .whitespacesAndNewlines)), "\(answer.output)")
        }

        // One pod fails its readiness probe: its endpoint turns not ready and it gets no traffic.
        try await node.kubectl(["exec", webPods[0], "--", "rm", "/www/ready"])
        try await node.waitForPod(webPods[0], seconds: 30) { pod in pod.status?.conditions?.contains { $0.type == "Ready" && $0.status == .false } == true }
        try await Task.sleep(for: .seconds(2))
        let unready = Self.now
        #expect(try await Self.waitFor(30) { Self.clientLines(log, since: unready).count >= 6 })
        let afterUnready = Self.clientLines(log, since: unready)
        #expect(afterUnready.allSatisfy { $0.contains("web=\(webPods[1])") }, "\(afterUnready)")

        // Scale to zero: refused at once; back to two: answered again.
        try await node.kubectl(["scale", "deployment", "web", "--replicas=0"])
        let scaledDown = Self.now
        #expect(try await Self.waitFor(120) { Self.clientLines(log, since: scaledDown).contains { $0.contains("refused") } }, "\(Self.clientLines(log, since: scaledDown).suffix(3))")
        try await node.kubectl(["scale", "deployment", "web", "--replicas=2"])
        #expect(try await node.kubectl(["rollout", "status", "deployment/web", "--timeout=180s"]).contains("successfully rolled out"))
        let scaledUp = Self.now
        #expect(try await Self.waitFor(60) { Self.clientLines(log, since: scaledUp).contains { $0.contains("web=web-") } }, "\(Self.clientLines(log, since: scaledUp).suffix(3))")

        // Create/delete cycles through the API leave no rule behind.
        let nft = try #require(NFTablesProxy.find())
        func chainCount() throws -> Int {
            try ServerProcess.run(nft, ["list", "table", "ip", ProxyRuleset.table]).output.split(separator: "\n").filter { $0.contains("chain ") || $0.contains(" : goto ") }.count
        }
        let before = try chainCount()
        for cycle in 0..<100 {
            try await node.kubectl(["create", "service", "nodeport", "cycle-\(cycle % 3)", "--tcp=90:8080"])
            try await node.kubectl(["delete", "service", "cycle-\(cycle % 3)"])
        }
        let listing = { (try? ServerProcess.run(nft, ["list", "table", "ip", ProxyRuleset.table]).output) ?? "" }
        #expect(try await Self.waitFor(60) { try chainCount() == before }, "\(listing())")

        // The API goes away: names still resolve and traffic still flows from the last rules.
        node.server.stop()
        let offline = Self.now
        #expect(try await Self.waitFor(30) { Self.clientLines(log, since: offline).count >= 6 })
        let whileOffline = Self.clientLines(log, since: offline)
        #expect(whileOffline.allSatisfy { $0.contains("web=web-") && $0.contains("dns=Address: \(clusterIP)") }, "\(whileOffline)")
        // And the agent restarts while the API is gone: the names come from its checkpoint, the
        // traffic from the rules the kernel kept.
        node.killAgent()
        try node.startAgent()
        try await Task.sleep(for: .seconds(3))
        let restarted = Self.now
        #expect(try await Self.waitFor(30) { Self.clientLines(log, since: restarted).count >= 6 })
        let afterRestart = Self.clientLines(log, since: restarted)
        #expect(afterRestart.allSatisfy { $0.contains("web=web-") && $0.contains("dns=Address: \(clusterIP)") }, "\(afterRestart)\nagent: \(node.agentLogTail)")
        try node.server.resume()
        await node.shutdown()
    }
}
