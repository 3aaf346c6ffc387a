import Foundation
import IotkubeTestSupport
import KubeModel
import Testing

/// The kubelet loop end to end: pods submitted with real kubectl to a real iotkube-server, run
/// by a real agent process from an image in a real registry, in real namespaces on a real CNI
/// bridge; statuses read back with kubectl and checked against the official schemas.
@Suite(.ownThread, .heavy, .serialized, .enabled(if: PodNode.available, "needs root, kubectl, the CNI plugins, docker-registry, umoci, skopeo, busybox-static and curl"))
struct PodLifecycleTests {
    var image: String { (try? PodImageRegistry.shared.get().busybox) ?? "" }

    @Test func aPodWithInitContainersVolumesEnvAndProbesRunsAndIsDeletedCleanly() async throws {
        let node = try await PodNode.make(name: "pod-board")
        try await node.kubectl(["create", "configmap", "settings", "--from-literal=level=debug", "--from-literal=mode=edge"])
        try await node.kubectl(["create", "secret", "generic", "creds", "--from-literal=password=s3cret"])
        try await node.apply("""
            apiVersion: v1
            kind: Pod
            metadata: {name: web}
            spec:
              terminationGracePeriodSeconds: 2
              initContainers:
              - name: first
                image: \(image)
                command: ["sh", "-c", "echo one >> /work/order"]
                volumeMounts: [{name: work, mountPath: /work}]
              - name: second
                image: \(image)
                command: ["sh", "-c", "echo two >> /work/order; cp /work/order /www/order.txt; echo served by busybox > /www/index.html"]
                volumeMounts: [{name: work, mountPath: /work}, {name: www, mountPath: /www}]
              containers:
              - name: web
                image: \(image)
                command: ["httpd", "-f", "-p", "8080", "-h", "/www"]
                ports: [{containerPort: 8080, name: http}]
                readinessProbe:
                  httpGet: {path: /index.html, port: http}
                  periodSeconds: 1
                volumeMounts: [{name: www, mountPath: /www}]
              - name: env
                image: \(image)
                command: ["sh", "-c", "echo LEVEL=$LEVEL PASSWORD=$PASSWORD MODE=$CFG_mode NODE=$NODE POD_IP=$POD_IP; cat /settings/level; echo; sleep 100000"]
                env:
                - {name: LEVEL, valueFrom: {configMapKeyRef: {name: settings, key: level}}}
                - {name: PASSWORD, valueFrom: {secretKeyRef: {name: creds, key: password}}}
                - {name: NODE, valueFrom: {fieldRef: {fieldPath: spec.nodeName}}}
                - {name: POD_IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}
                envFrom: [{prefix: CFG_, configMapRef: {name: settings}}]
                volumeMounts: [{name: settings, mountPath: /settings}]
              - name: toggle
                image: \(image)
                command: ["sh", "-c", "sleep 2; touch /tmp/ready; sleep 4; rm /tmp/ready; sleep 100000"]
                readinessProbe:
                  exec: {command: ["test", "-f", "/tmp/ready"]}
                  periodSeconds: 1
              volumes:
              - {name: work, emptyDir: {}}
              - {name: www, emptyDir: {medium: Memory}}
              - {name: settings, configMap: {name: settings}}
            """)

        // The readiness file comes and goes: the container is seen ready, then not.
        try await node.waitForPod("web", seconds: 90) { PodNode.status($0, "toggle")?.ready == true }
        let running = try await node.waitForPod("web", seconds: 30) { PodNode.status($0, "toggle")?.ready == false && PodNode.status($0, "web")?.ready == true }
        #expect(running.status?.phase == .running)
        #expect(running.status?.conditions?.first { $0.type == "ContainersReady" }?.status == .false)
        #expect(running.status?.conditions?.first { $0.type == "Initialized" }?.status == .true)
        #expect(running.status?.initContainerStatuses?.map { $0.state?.terminated?.reason } == ["Completed", "Completed"])
        #expect(running.status?.qosClass == .bestEffort)
        let podIP = try #require(running.status?.podIP)
        let prefix = node.podCIDR.split(separator: ".").prefix(3).joined(separator: ".") + "."
        #expect(podIP.hasPrefix(prefix), "\(podIP) is not in \(node.podCIDR)")
        let web = try #require(PodNode.status(running, "web"))
        #expect(web.containerID?.hasPrefix("iotkube://") == true && web.imageID.contains("@sha256:") && web.started == true)

        // The init containers ran in order, and the web server answers on the pod IP.
        let page = try await ServerProcess.runAsync("/usr/bin/curl", ["-sf", "--max-time", "5", "http://\(podIP):8080/order.txt"])
        #expect(page.output == "one\ntwo\n", "\(page.output)")

        // Environment from the ConfigMap, the Secret and the downward API, in the CRI log file.
        let logFolder = "\(node.logDirectory)/default_web_\(running.metadata.uid ?? "")"
        let log = try String(contentsOfFile: logFolder + "/env/0.log", encoding: .utf8)
        #expect(log.contains("stdout F LEVEL=debug PASSWORD=s3cret MODE=edge NODE=pod-board POD_IP=\(podIP)"), "\(log)")
        #expect(log.contains("stdout F debug"), "\(log)")

        // kubectl logs, through the server and the agent's endpoint: plain, tail, timestamps, follow.
        #expect(try await node.kubectl(["logs", "web", "-c", "env"]).contains("LEVEL=debug PASSWORD=s3cret"))
        #expect(try await node.kubectl(["logs", "web", "-c", "env", "--tail=1"]) == "debug\n")
        let stamped = try await node.kubectl(["logs", "web", "-c", "env", "--timestamps", "--tail=1"])
        #expect(stamped.range(of: #"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z debug\n$"#, options: .regularExpression) != nil, "\(stamped)")
        let kubectl = try #require(ServerProcess.kubectlPath)
        let followed = try await ServerProcess.runAsync("/bin/sh", ["-c", "timeout 4 '\(kubectl)' --kubeconfig '\(node.server.kubeconfig)' logs -f web -c env; true"])
        #expect(followed.output.contains("LEVEL=debug") && followed.output.contains("debug\n"), "\(followed.output)")
        #expect(try await node.serverKubectl(["get", "--raw", "/api/v1/namespaces/default/pods/web/log"]).output.contains("a container name must be specified"))
        #expect(try await node.serverKubectl(["logs", "web", "-c", "env", "--previous"]).output.contains("previous terminated container"))

        // Every object the server returns for the pod passes the official schema.
        let podJSON = Array(try await node.kubectl(["get", "pod", "web", "-o", "json"]).utf8)
        let failures = try await onOwnThread { try SchemaCheck.failures([("pod", podJSON)]) }
        #expect(failures.isEmpty, "\(failures)")
        let table = try await node.kubectl(["get", "pod", "web", "-o", "wide"])
        #expect(table.range(of: #"web\s+2/3\s+Running\s+0"#, options: .regularExpression) != nil, "\(table)")

        // Deletion: gone from the API within the grace period, nothing left on the board.
        let deleted = try await node.serverKubectl(["delete", "pod", "web", "--timeout=90s"])
        if deleted.status != 0 {
            let left = try await node.serverKubectl(["get", "pod", "web", "-o", "json"]).output
            Issue.record("kubectl delete: \(deleted.output)\npod: \(left)\nagent log:\n\(node.agentLogTail)")
        }
        #expect(try await node.runtimeContainers().isEmpty)
        #expect(!FileManager.default.fileExists(atPath: node.stateDirectory + "/pods/" + (running.metadata.uid ?? "")))
        let veths = try await ServerProcess.runAsync("/bin/sh", ["-c", "ls /sys/class/net/\(node.bridge)/brif 2>/dev/null | wc -l"])
        #expect(veths.output.trimmingCharacters(in: .whitespacesAndNewlines) == "0", "\(veths.output)")
        await node.shutdown()
    }

    /// A registry that answers every request with a body that never ends, a byte at a time
    /// (the read timeout never fires: a slow link to a big image).
    static let tricklingRegistry = """
        import socket, sys, threading, time
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", int(sys.argv[1])))
        server.listen(16)
        def trickle(connection):
            try:
                connection.recv(65536)
                print("request", flush=True)
                connection.sendall(b"HTTP/1.1 200 OK\\r\\nContent-Type: application/vnd.oci.image.manifest.v1+json\\r\\nContent-Length: 4000000\\r\\n\\r\\n")
                while True:
                    connection.sendall(b" ")
                    time.sleep(0.5)
            except OSError:
                print("closed", flush=True)
        while True:
            connection, _ = server.accept()
            threading.Thread(target=trickle, args=(connection,), daemon=True).start()
        """

    /// Deleting pods cancels the image pull in flight (one download, shared by both): they are
    /// gone within their grace period, not when the download ends (here: never).
    @Test func podsDeletedDuringAnImagePullAreGoneWithinTheirGracePeriod() async throws {
        let port = try ServerProcess.freePort()
        let node = try await PodNode.make(name: "pull-board", insecureRegistries: ["127.0.0.1:\(port)"])
        let log = node.base + "/trickle.log"
        let registry = try BackgroundProcess("/usr/bin/python3", ["-c", Self.tricklingRegistry, String(port)], logPath: log)
        defer { registry.stop() }
        // Two pods of the same image share one download.
        for name in ["stuck-a", "stuck-b"] {
            try await node.apply("""
                apiVersion: v1
                kind: Pod
                metadata: {name: \(name)}
                spec:
                  terminationGracePeriodSeconds: 1
                  containers:
                  - {name: app, image: "127.0.0.1:\(port)/test/big:1"}
                """)
        }
        // The pull is under way: the registry has a request and is sending.
        for _ in 0..<600 {
            if (try? String(contentsOfFile: log, encoding: .utf8))?.contains("request") == true { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect((try? String(contentsOfFile: log, encoding: .utf8))?.contains("request") == true, "the agent never asked the registry\n\(node.agentLogTail)")
        try await Task.sleep(for: .seconds(2))
        let deleted = Date()
        try await node.kubectl(["delete", "pod", "stuck-a", "stuck-b", "--wait=false"])
        var gone = false
        while Date().timeIntervalSince(deleted) < 60 {
            if try await node.serverKubectl(["get", "pods", "-o", "name"]).output.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { gone = true; break }
            try await Task.sleep(for: .milliseconds(250))
        }
        let seconds = Date().timeIntervalSince(deleted)
        #expect(gone && seconds < 20, "the pods were \(gone ? "gone after \(Int(seconds)) s" : "still there after 60 s")\n\(node.agentLogTail)")
        // The agent hung up on the registry (the download stopped), and the board is clean.
        for _ in 0..<100 {
            if (try? String(contentsOfFile: log, encoding: .utf8))?.contains("closed") == true { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect((try? String(contentsOfFile: log, encoding: .utf8))?.contains("closed") == true, "the download went on")
        #expect(try await node.runtimeContainers().isEmpty)
        await node.shutdown()
    }

    @Test func crashLoopsBackOffAndFailingProbesRestartContainers() async throws {
        let node = try await PodNode.make(name: "crash-board")
        try await node.apply("""
            apiVersion: v1
            kind: Pod
            metadata: {name: crash}
            spec:
              terminationGracePeriodSeconds: 1
              containers:
              - name: crash
                image: \(image)
                command: ["sh", "-c", "echo attempt; echo giving up > /dev/termination-log; exit 3"]
              - name: unhealthy
                image: \(image)
                command: ["sh", "-c", "touch /tmp/alive; sleep 3; rm /tmp/alive; sleep 100000"]
                livenessProbe:
                  exec: {command: ["test", "-f", "/tmp/alive"]}
                  periodSeconds: 1
                  failureThreshold: 2
              - name: slow-start
                image: \(image)
                command: ["sh", "-c", "sleep 4; touch /tmp/started; sleep 100000"]
                startupProbe:
                  exec: {command: ["test", "-f", "/tmp/started"]}
                  periodSeconds: 1
                  failureThreshold: 30
                livenessProbe:
                  exec: {command: ["test", "-f", "/tmp/started"]}
                  periodSeconds: 1
                  failureThreshold: 1
            """)
        let last = try await node.waitForPod("crash", seconds: 150) { (PodNode.status($0, "crash")?.restartCount ?? 0) >= 3 }
        let crash = try #require(PodNode.status(last, "crash"))
        // The back-off between an exit and the next start, from the agent's own log: 10 s, 20 s, 40 s.
        let delays = try node.restartDelays(container: "crash")
        try #require(delays.count >= 3, "\(delays)\n\(node.agentLogTail)")
        #expect(delays[0] >= 9 && delays[1] >= 19 && delays[2] >= 38, "\(delays)")
        #expect(delays[1] >= delays[0] * 1.5 && delays[2] >= delays[1] * 1.5, "the delays double: \(delays)")
        #expect(crash.lastState?.terminated?.exitCode == 3 && crash.lastState?.terminated?.reason == "Error")
        #expect(crash.lastState?.terminated?.message == "giving up\n")
        #expect(last.status?.phase == .running)
        #expect(try await node.kubectl(["logs", "crash", "-c", "crash", "--previous"]) == "attempt\n")

        // The liveness probe restarted the unhealthy container; the startup probe held the
        // slow one's liveness probe off, so it was never restarted.
        let unhealthy = try #require(PodNode.status(last, "unhealthy"))
        #expect(unhealthy.restartCount >= 1)
        #expect(unhealthy.lastState?.terminated?.exitCode == 137)
        if unhealthy.state?.running != nil {
            #expect(unhealthy.lastState?.terminated?.containerID != unhealthy.containerID, "the last state names the run that ended")
        }
        let slow = try #require(PodNode.status(last, "slow-start"))
        #expect(slow.restartCount == 0 && slow.started == true && slow.ready == true, "\(slow)")

        // Never: a failed container fails the pod; OnFailure: a success completes it.
        try await node.apply("""
            apiVersion: v1
            kind: Pod
            metadata: {name: once}
            spec:
              restartPolicy: Never
              containers: [{name: once, image: \(image), command: ["sh", "-c", "exit 4"]}]
            ---
            apiVersion: v1
            kind: Pod
            metadata: {name: job}
            spec:
              restartPolicy: OnFailure
              containers: [{name: job, image: \(image), command: ["sh", "-c", "echo done"]}]
            """)
        let once = try await node.waitForPod("once", seconds: 60) { $0.status?.phase == .failed }
        #expect(PodNode.status(once, "once")?.state?.terminated?.exitCode == 4 && PodNode.status(once, "once")?.restartCount == 0)
        let job = try await node.waitForPod("job", seconds: 60) { $0.status?.phase == .succeeded }
        #expect(PodNode.status(job, "job")?.state?.terminated?.reason == "Completed")
        var documents: [(name: String, json: [UInt8])] = []
        for name in ["crash", "once", "job"] { documents.append((name, Array(try await node.kubectl(["get", "pod", name, "-o", "json"]).utf8))) }

        // Events tell the story (aggregated: a repeated event counts up instead of piling up).
        let eventsJSON = try await node.kubectl(["get", "events", "-o", "json"])
        let events = try KubeJSON.decode(KubeList<Event>.self, from: Array(eventsJSON.utf8)).items
            .filter { $0.involvedObject.name == "crash" && $0.source?.component == "kubelet" }
        for (index, event) in events.enumerated() { documents.append(("event-\(index)", try KubeJSON.encode(event))) }
        let reasons = Set(events.compactMap(\.reason))
        #expect(reasons.isSuperset(of: ["Pulled", "Created", "Started", "BackOff", "Unhealthy", "Killing"]), "\(reasons)")
        #expect(events.contains { $0.reason == "Killing" && $0.message?.contains("failed liveness probe") == true && $0.involvedObject.fieldPath == "spec.containers{unhealthy}" })
        #expect(events.allSatisfy { $0.source?.host == "crash-board" })
        let checked = documents
        let failures = try await onOwnThread { try SchemaCheck.failures(checked) }
        #expect(failures.isEmpty, "\(failures)")
        await node.shutdown()
    }

    @Test func badPodsWaitWithClearReasonsAndTheAgentStaysHealthy() async throws {
        let node = try await PodNode.make(name: "bad-board")
        try await node.apply("""
            apiVersion: v1
            kind: Pod
            metadata: {name: missing-image}
            spec:
              containers: [{name: app, image: "\(try PodImageRegistry.shared.get().address)/test/nothing:1"}]
            ---
            apiVersion: v1
            kind: Pod
            metadata: {name: missing-config}
            spec:
              containers:
              - name: app
                image: \(image)
                command: ["sleep", "100000"]
                env: [{name: X, valueFrom: {configMapKeyRef: {name: absent, key: x}}}]
            ---
            apiVersion: v1
            kind: Pod
            metadata: {name: never-pull}
            spec:
              containers: [{name: app, image: "\(try PodImageRegistry.shared.get().address)/test/other:1", imagePullPolicy: Never}]
            """)
        let missing = try await node.waitForPod("missing-image", seconds: 60) { PodNode.status($0, "app")?.state?.waiting?.reason == "ImagePullBackOff" }
        #expect(PodNode.status(missing, "app")?.state?.waiting?.message?.contains("test/nothing:1") == true)
        let config = try await node.waitForPod("missing-config", seconds: 60) { PodNode.status($0, "app")?.state?.waiting?.reason == "CreateContainerConfigError" }
        #expect(PodNode.status(config, "app")?.state?.waiting?.message?.contains("absent") == true, "\(String(describing: PodNode.status(config, "app")))")
        let never = try await node.waitForPod("never-pull", seconds: 60) { PodNode.status($0, "app")?.state?.waiting?.reason == "ErrImageNeverPull" }
        #expect(never.status?.phase == .pending)
        // Bound straight to the node (no scheduler) and larger than the node: admission refuses it.
        try await node.apply("""
            apiVersion: v1
            kind: Pod
            metadata: {name: too-big}
            spec:
              nodeName: bad-board
              containers:
              - name: app
                image: \(image)
                command: ["sleep", "100000"]
                resources: {requests: {memory: 100Ti}}
            """)
        let tooBig = try await node.waitForPod("too-big", seconds: 60) { $0.status?.phase == .failed }
        #expect(tooBig.status?.reason == "OutOfmemory", "\(String(describing: tooBig.status))")
        #expect(tooBig.status?.message?.contains("Node didn't have enough resource: memory") == true)
        // The ConfigMap appears: the pod starts without being recreated.
        try await node.kubectl(["create", "configmap", "absent", "--from-literal=x=1"])
        try await node.waitForPod("missing-config", seconds: 60) { PodNode.status($0, "app")?.state?.running != nil }
        #expect(try await node.kubectl(["get", "node", "bad-board"]).contains("Ready"))
        await node.shutdown()
    }

    @Test func containersSurviveAnAgentCrashAndAnOfflineRebootRestartsPods() async throws {
        let node = try await PodNode.make(name: "edge-board")
        try await node.apply("""
            apiVersion: v1
            kind: Pod
            metadata: {name: steady}
            spec:
              terminationGracePeriodSeconds: 1
              containers: [{name: app, image: \(image), command: ["sleep", "100000"]}]
            """)
        let before = try await node.waitForPod("steady") { PodNode.status($0, "app")?.state?.running != nil }
        let containerID = try #require(PodNode.status(before, "app")?.containerID)

        // kill -9 of the agent: the container keeps running and is adopted, not restarted.
        node.killAgent()
        try node.startAgent()
        try await Task.sleep(for: .seconds(4))
        let adopted = try await node.waitForPod("steady") { PodNode.isReady($0) }
        #expect(PodNode.status(adopted, "app")?.containerID == containerID)
        #expect(PodNode.status(adopted, "app")?.restartCount == 0)
        #expect(try String(contentsOfFile: node.agentLog, encoding: .utf8).contains("adopted container app"))

        // The board reboots while its server is down: the pod comes back from the checkpoint.
        node.server.process.terminate()
        node.server.process.waitUntilExit()
        try await onOwnThread { try node.simulateReboot() }
        #expect(try await node.runtimeContainers().isEmpty)
        try node.startAgent()
        var restarted: [String] = []
        for _ in 0..<100 {
            restarted = try await node.runtimeContainers()
            if !restarted.isEmpty { break }
            try await Task.sleep(for: .seconds(0.3))
        }
        #expect(restarted.count == 1, "\(node.agentLogTail)")
        #expect(try String(contentsOfFile: node.agentLog, encoding: .utf8).contains("1 pods from the local checkpoint"))
        // `status` tells what runs from the board itself while the server is away.
        let status = try await ServerProcess.runAsync(JoinTests.agent, ["status", "--config", node.configDirectory + "/agent.yaml"])
        #expect(status.status != 0 && status.output.contains("1 running") && status.output.contains("default/steady  app  running"), "\(status.output)")

        // The server is back: the status catches up with the new container.
        try await onOwnThread { try node.server.restart() }
        let after = try await node.waitForPod("steady", seconds: 60) { pod in
            PodNode.status(pod, "app")?.containerID != containerID && PodNode.status(pod, "app")?.state?.running != nil
        }
        #expect(PodNode.status(after, "app")?.containerID == "iotkube://" + (restarted.first ?? ""))
        // The run before the reboot counts as a restart, as with the kubelet.
        #expect(PodNode.status(after, "app")?.restartCount == 1)
        #expect(PodNode.status(after, "app")?.lastState?.terminated?.exitCode == 255)
        await node.shutdown()
    }

    @Test func staticPodsRunFromManifestsAndAreMirroredInTheAPI() async throws {
        let node = try await PodNode.make(name: "static-board")
        try """
            apiVersion: v1
            kind: Pod
            metadata: {name: sensor, labels: {app: sensor}}
            spec:
              terminationGracePeriodSeconds: 1
              containers: [{name: sensor, image: \(image), command: ["sh", "-c", "while true; do echo reading; sleep 1; done"]}]
            """.write(toFile: node.manifestDirectory + "/sensor.yaml", atomically: true, encoding: .utf8)
        try "kind: Pod\nmetadata: [broken\n".write(toFile: node.manifestDirectory + "/broken.yaml", atomically: true, encoding: .utf8)

        let mirror = try await node.waitForPodToExist("sensor-static-board") { PodNode.isReady($0) }
        let annotations = mirror.metadata.annotations ?? [:]
        #expect(annotations["kubernetes.io/config.source"] == "file")
        #expect(annotations["kubernetes.io/config.mirror"] != nil && annotations["kubernetes.io/config.mirror"] == annotations["kubernetes.io/config.hash"])
        #expect(mirror.metadata.ownerReferences?.first?.kind == "Node")
        #expect(try await node.kubectl(["logs", "sensor-static-board"]).contains("reading"))
        #expect(try String(contentsOfFile: node.agentLog, encoding: .utf8).contains("broken.yaml"))

        // A deleted mirror comes back (with the status); the static pod never stopped.
        let containers = try await node.runtimeContainers()
        try await node.kubectl(["delete", "pod", "sensor-static-board", "--wait=false"])
        let again = try await node.waitForPodToExist("sensor-static-board") { $0.metadata.uid != mirror.metadata.uid && PodNode.isReady($0) }
        #expect(again.status?.podIP == mirror.status?.podIP)
        #expect(try await node.runtimeContainers() == containers)

        // The manifest goes: so do the pod and its mirror.
        try FileManager.default.removeItem(atPath: node.manifestDirectory + "/sensor.yaml")
        var gone = false
        for _ in 0..<100 {
            if try await node.runtimeContainers().isEmpty, try await node.serverKubectl(["get", "pod", "sensor-static-board"]).status != 0 { gone = true; break }
            try await Task.sleep(for: .seconds(0.3))
        }
        #expect(gone, "\(node.agentLogTail)")
        await node.shutdown()
    }

    @Test func podsReachEachOtherTheHostAndHostPortsAndABrokenNetworkIsAClearReason() async throws {
        let node = try await PodNode.make(name: "net-board")
        let hostPort = try ServerProcess.freePort(), hostNetworkPort = try ServerProcess.freePort()
        try await node.apply("""
            apiVersion: v1
            kind: Pod
            metadata: {name: server}
            spec:
              terminationGracePeriodSeconds: 1
              containers:
              - name: httpd
                image: \(image)
                command: ["httpd", "-f", "-p", "8080", "-h", "/www"]
                ports: [{containerPort: 8080, hostPort: \(hostPort)}]
                readinessProbe: {tcpSocket: {port: 8080}, periodSeconds: 1}
            ---
            apiVersion: v1
            kind: Pod
            metadata: {name: on-host}
            spec:
              hostNetwork: true
              terminationGracePeriodSeconds: 1
              containers:
              - name: httpd
                image: \(image)
                command: ["httpd", "-f", "-p", "\(hostNetworkPort)", "-h", "/www"]
                readinessProbe: {tcpSocket: {port: \(hostNetworkPort)}, periodSeconds: 1}
            """)
        let server = try await node.waitForPod("server") { PodNode.isReady($0) }
        let serverIP = try #require(server.status?.podIP)
        let hostIP = try #require(server.status?.hostIP)
        // Another pod reaches it by pod IP.
        try await node.apply("""
            apiVersion: v1
            kind: Pod
            metadata: {name: client}
            spec:
              terminationGracePeriodSeconds: 1
              restartPolicy: OnFailure
              containers:
              - name: wget
                image: \(image)
                command: ["sh", "-c", "timeout 5 wget -q -O - http://\(serverIP):8080/index.html"]
            """)
        try await node.waitForPod("client") { $0.status?.phase == .succeeded }
        #expect(try await node.kubectl(["logs", "client"]) == "served by busybox\n")
        // The host reaches the hostPort on loopback and on the node's address.
        for address in ["127.0.0.1", hostIP] {
            let page = try await ServerProcess.runAsync("/usr/bin/curl", ["-sf", "--max-time", "5", "http://\(address):\(hostPort)/index.html"])
            #expect(page.output == "served by busybox\n", "hostPort on \(address): \(page.output)")
        }
        // A hostNetwork pod listens on the host itself and reports the host's address.
        let onHost = try await node.waitForPod("on-host") { PodNode.isReady($0) }
        #expect(onHost.status?.podIP == onHost.status?.hostIP)
        let direct = try await ServerProcess.runAsync("/usr/bin/curl", ["-sf", "--max-time", "5", "http://127.0.0.1:\(hostNetworkPort)/index.html"])
        #expect(direct.output == "served by busybox\n", "\(direct.output)")
        try await node.kubectl(["delete", "pod", "server", "client", "on-host", "--timeout=90s"])

        // A broken CNI configuration: the pod waits in ContainerCreating saying why; the node stays Ready.
        try "{ not json".write(toFile: node.base + "/cni/00-broken.conflist", atomically: true, encoding: .utf8)
        node.killAgent()
        try node.startAgent()
        try await node.apply("""
            apiVersion: v1
            kind: Pod
            metadata: {name: stranded}
            spec:
              terminationGracePeriodSeconds: 1
              containers: [{name: app, image: \(image), command: ["sleep", "100000"]}]
            """)
        let stranded = try await node.waitForPod("stranded") { PodNode.status($0, "app")?.state?.waiting?.message?.contains("00-broken.conflist") == true }
        #expect(PodNode.status(stranded, "app")?.state?.waiting?.reason == "ContainerCreating")
        #expect(stranded.status?.conditions?.first { $0.type == "PodReadyToStartContainers" }?.status == .false)
        #expect(try await node.kubectl(["get", "node", "net-board"]).range(of: #"net-board\s+Ready"#, options: .regularExpression) != nil)
        try FileManager.default.removeItem(atPath: node.base + "/cni/00-broken.conflist")
        await node.shutdown()
    }

    @Test func everyVolumeKindReachesTheContainer() async throws {
        let node = try await PodNode.make(name: "volume-board")
        let hostDirectory = node.base + "/host-data"
        try FileManager.default.createDirectory(atPath: hostDirectory, withIntermediateDirectories: true)
        try "from the host\n".write(toFile: hostDirectory + "/note", atomically: true, encoding: .utf8)
        try await node.kubectl(["create", "configmap", "app-config", "--from-literal=mode=edge"])
        try await node.kubectl(["create", "secret", "generic", "app-secret", "--from-literal=token=t0ken"])
        try await node.apply("""
            apiVersion: v1
            kind: Pod
            metadata: {name: volumes, labels: {tier: sensor}}
            spec:
              restartPolicy: Never
              containers:
              - name: show
                image: \(image)
                command: ["sh", "-c", "cat /host/note /secret/token; echo; cat /info/labels; echo; cat /all/mode /all/token /all/name; echo; stat -c '%a' /secret/..data/token; echo out > /host/written"]
                volumeMounts:
                - {name: host, mountPath: /host}
                - {name: secret, mountPath: /secret, readOnly: true}
                - {name: info, mountPath: /info}
                - {name: all, mountPath: /all}
              volumes:
              - {name: host, hostPath: {path: "\(hostDirectory)", type: Directory}}
              - {name: secret, secret: {secretName: app-secret, defaultMode: 0400}}
              - name: info
                downwardAPI: {items: [{path: labels, fieldRef: {fieldPath: metadata.labels}}]}
              - name: all
                projected:
                  sources:
                  - configMap: {name: app-config}
                  - secret: {name: app-secret}
                  - downwardAPI: {items: [{path: name, fieldRef: {fieldPath: metadata.name}}]}
            """)
        let done = try await node.waitForPod("volumes", seconds: 90) { $0.status?.phase == .succeeded || $0.status?.phase == .failed }
        #expect(done.status?.phase == .succeeded, "\(String(describing: done.status))")
        let output = try await node.kubectl(["logs", "volumes"])
        #expect(output == "from the host\nt0ken\ntier=\"sensor\"\nedget0kenvolumes\n400\n", "\(output)")
        #expect(try String(contentsOfFile: hostDirectory + "/written", encoding: .utf8) == "out\n")
        await node.shutdown()
    }
}
