import Foundation
@testable import Agent
import ImageStore
import IotkubeTestSupport
import KubeModel
import Logging
import PodNetwork
import Testing

/// One pod worker in-process, over a fake runtime and a fake image source whose pull blocks:
/// deletion, eviction and a newer pod version arriving in the middle of a sync, and a run that
/// starts, exits and is removed. No node, server or registry.
@Suite(.ownThread, .enabled(if: getuid() == 0, "needs root (container roots are overlay mounts)"))
struct PodWorkerTests {
    /// The worker's surroundings: a fake runtime and image source, a status reporter without an
    /// API (statuses stay in its entries), and state, logs and the image's root under one directory.
    struct Bench {
        let base: String
        let runtime: FakePodRuntime
        let images: FakeImageSource
        let reporter: PodStatusReporter
        let host: PodHost

        init(blockingPulls: Bool) throws {
            base = NSTemporaryDirectory() + "iotkube-worker-\(UUID().uuidString)"
            let rootfs = base + "/image"
            for directory in ["bin", "etc", "tmp", "proc", "dev", "sys"] {
                try FileManager.default.createDirectory(atPath: rootfs + "/" + directory, withIntermediateDirectories: true)
            }
            var configuration = AgentConfiguration()
            configuration.stateDir = base + "/state"
            configuration.nodeName = "bench"
            runtime = FakePodRuntime(root: base + "/runtime")
            images = try FakeImageSource(rootfs: rootfs, blocking: blockingPulls)
            let logger = Logger(label: "pod-worker-test")
            reporter = PodStatusReporter(client: { nil }, logger: logger)
            var host = PodHost(
                configuration: configuration, runtime: runtime, images: images, registry: RegistryConfiguration(),
                network: PodNetworkProvider(configuration: configuration, client: { nil }), dns: PodDNS(hostResolvConf: "nameserver 192.0.2.53\n"),
                nodeHosts: "127.0.0.1\tlocalhost\n", nodeHostname: "bench", hostIPs: ["192.0.2.10"], nodeAllocatable: [:],
                nodeMemoryCapacity: 1 << 30, logDirectory: base + "/logs", client: { nil }, status: reporter, logger: logger)
            host.syncInterval = .milliseconds(100)
            self.host = host
        }

        /// A host-network pod (no sandbox or CNI) with one container of the fake image.
        func pod(uid: String, restartPolicy: String = "Always", gracePeriod: Int = 30, annotations: [String: String] = [:]) throws -> Pod {
            let annotationJSON = annotations.map { "\"\($0.key)\": \"\($0.value)\"" }.joined(separator: ",")
            return try KubeJSON.decode(Pod.self, from: """
                {"apiVersion": "v1", "kind": "Pod",
                 "metadata": {"name": "app-\(uid)", "namespace": "default", "uid": "\(uid)", "annotations": {\(annotationJSON)}},
                 "spec": {"hostNetwork": true, "restartPolicy": "\(restartPolicy)", "terminationGracePeriodSeconds": \(gracePeriod),
                          "containers": [{"name": "app", "image": "registry.invalid/app:1", "imagePullPolicy": "Always"}]}}
                """)
        }

        func status(_ uid: String) async -> PodStatus? { await reporter.entries[uid]?.status }

        /// Unmounts what a failed test left mounted and removes everything.
        func tearDown() {
            _ = try? ServerProcess.run("/bin/sh", ["-c", "awk '{print $5}' /proc/self/mountinfo | grep '^\(base)/' | sort -r | xargs -r -n1 umount -l"])
            try? FileManager.default.removeItem(atPath: base)
        }
    }

    /// Polls `condition` every 20 ms for up to `seconds`.
    static func eventually(_ seconds: Double, _ condition: () async -> Bool) async -> Bool {
        for _ in 0..<Int(seconds * 50) {
            if await condition() { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return await condition()
    }

    /// Whether `task` ends within `seconds`; one that does not is cancelled (a worker that never
    /// ends fails the test instead of hanging it).
    static func ends(_ task: Task<Void, Never>, within seconds: Double) async -> Bool {
        let ended = await withTaskGroup(of: Bool.self) { group in
            group.addTask { try? await Task.sleep(for: .seconds(seconds)); return false }
            group.addTask { await task.value; return true }
            let first = await group.next() ?? false
            // Awaiting a task's value is not cancellable: the task itself is.
            if !first { task.cancel() }
            group.cancelAll()
            return first
        }
        return ended
    }

    /// A sidecar (an init container that keeps running) whose liveness probe fails is restarted
    /// while the init containers after it wait, as an app container would be.
    @Test func aSidecarFailingItsLivenessProbeIsRestartedDuringInit() async throws {
        let bench = try Bench(blockingPulls: false)
        defer { bench.tearDown() }
        bench.runtime.execStatus.withLock { $0 = 1 }
        let pod = try KubeJSON.decode(Pod.self, from: """
            {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "sidecar", "namespace": "default", "uid": "sidecar"},
             "spec": {"hostNetwork": true, "terminationGracePeriodSeconds": 1,
                      "initContainers": [{"name": "proxy", "image": "registry.invalid/app:1", "restartPolicy": "Always",
                                          "livenessProbe": {"exec": {"command": ["check"]}, "periodSeconds": 1, "failureThreshold": 1}},
                                         {"name": "setup", "image": "registry.invalid/app:1"}],
                      "containers": [{"name": "app", "image": "registry.invalid/app:1"}]}}
            """)
        let worker = PodWorker(pod: pod, host: bench.host)
        let running = Task { await worker.run() }
        defer { running.cancel() }
        #expect(await Self.eventually(30) { bench.runtime.log.contains("exec sidecar-proxy-0 check") })
        #expect(await Self.eventually(30) { bench.runtime.log.contains("start sidecar-proxy-1") }, "\(bench.runtime.log)")
        #expect(bench.runtime.log.contains("kill sidecar-proxy-0 \(SIGTERM)"))
        await worker.remove()
        #expect(await Self.ends(running, within: 60))
    }

    /// A pod removed (no longer wanted here) and then deleted in the API while its container is
    /// still being stopped: the API object is deleted too, not left Terminating.
    @Test func aDeletionArrivingWhileARemovedPodStopsStillDeletesIt() async throws {
        let bench = try Bench(blockingPulls: false)
        defer { bench.tearDown() }
        bench.runtime.ignoredSignals.withLock { $0 = [SIGTERM] }
        let pod = try bench.pod(uid: "late", gracePeriod: 2)
        let worker = PodWorker(pod: pod, host: bench.host)
        let running = Task { await worker.run() }
        defer { running.cancel() }
        #expect(await Self.eventually(30) { bench.runtime.log.contains("start late-app-0") })
        await worker.remove()
        #expect(await Self.eventually(30) { bench.runtime.log.contains("kill late-app-0 \(SIGTERM)") })
        var deleted = pod
        deleted.metadata.deletionTimestamp = .now()
        deleted.metadata.deletionGracePeriodSeconds = 2
        await worker.update(deleted)
        #expect(await Self.ends(running, within: 60))
        #expect(bench.runtime.log.contains("kill late-app-0 \(SIGKILL)"), "the ignored signal was followed by SIGKILL")
        #expect(await bench.reporter.entries["late"]?.deleteWhenWritten == true, "the API object is deleted after its final status")
    }

    @Test func aPodDeletedDuringAPullIsGoneWellWithinItsGracePeriod() async throws {
        let bench = try Bench(blockingPulls: true)
        defer { bench.tearDown() }
        let pod = try bench.pod(uid: "deleted")
        let worker = PodWorker(pod: pod, host: bench.host)
        let running = Task { await worker.run() }
        defer { running.cancel() }
        #expect(await Self.eventually(30) { bench.images.state.withLock { $0.pullsStarted } == 1 })
        var deleted = pod
        deleted.metadata.deletionTimestamp = .now()
        deleted.metadata.deletionGracePeriodSeconds = 30
        await worker.update(deleted)
        // The pull is cancelled at once: the worker does not wait for it (it would for ever here).
        #expect(await Self.ends(running, within: 20), "the worker ended")
        #expect(bench.images.state.withLock { $0.pullsCancelled } == 1)
        #expect(bench.runtime.log.isEmpty, "nothing was created")
        #expect(await bench.reporter.entries["deleted"]?.deleteWhenWritten == true, "the API object is deleted after its final status")
        #expect(!FileManager.default.fileExists(atPath: bench.host.podDirectory(uid: "deleted")))
    }

    @Test func aNewerPodVersionWaitsForTheNextSync() async throws {
        let bench = try Bench(blockingPulls: true)
        defer { bench.tearDown() }
        let worker = PodWorker(pod: try bench.pod(uid: "newer", annotations: ["version": "1"]), host: bench.host)
        let running = Task { await worker.run() }
        defer { running.cancel() }
        #expect(await Self.eventually(30) { bench.images.state.withLock { $0.pullsStarted } == 1 })
        await worker.update(try bench.pod(uid: "newer", annotations: ["version": "2"]))
        // The sync in flight keeps the pod it began with.
        #expect(await worker.pod.metadata.annotations?["version"] == "1")
        bench.images.finishPulls()
        #expect(await Self.eventually(30) { bench.runtime.log.contains("start newer-app-0") })
        #expect(await Self.eventually(30) { await worker.pod.metadata.annotations?["version"] == "2" })
        let spec = try bench.runtime.spec(bundle: try bench.runtime.record(id: "newer-app-0").bundle)
        #expect(spec.process?.args == ["sleep", "1000"] && spec.annotations?["io.kubernetes.pod.uid"] == "newer")
        await worker.remove()
        #expect(await Self.ends(running, within: 60))
    }

    @Test func anEvictionCancelsAPullAndReportsTheReason() async throws {
        let bench = try Bench(blockingPulls: true)
        defer { bench.tearDown() }
        let worker = PodWorker(pod: try bench.pod(uid: "evicted"), host: bench.host)
        let running = Task { await worker.run() }
        defer { running.cancel() }
        #expect(await Self.eventually(30) { bench.images.state.withLock { $0.pullsStarted } == 1 })
        await worker.evict(message: "The node was low on resource: memory.", gracePeriod: 0)
        #expect(await Self.eventually(30) { await worker.isKillDone })
        #expect(bench.images.state.withLock { $0.pullsCancelled } == 1)
        let status = try #require(await bench.status("evicted"))
        #expect(status.phase == .failed && status.reason == "Evicted" && status.message == "The node was low on resource: memory.")
        #expect(status.conditions?.contains { $0.type == "DisruptionTarget" && $0.reason == "TerminationByKubelet" } == true)
        // An evicted pod starts nothing more; it stays until it is deleted.
        bench.images.finishPulls()
        try await Task.sleep(for: .milliseconds(500))
        #expect(bench.runtime.log.isEmpty)
        await worker.remove()
        #expect(await Self.ends(running, within: 60))
    }

    @Test func aRunThatExitsIsReportedAndARemovedPodIsStopped() async throws {
        let bench = try Bench(blockingPulls: false)
        defer { bench.tearDown() }
        // Never: the exit ends the pod.
        let once = PodWorker(pod: try bench.pod(uid: "once", restartPolicy: "Never"), host: bench.host)
        let onceRunning = Task { await once.run() }
        defer { onceRunning.cancel() }
        #expect(await Self.eventually(30) { await bench.status("once")?.containerStatuses?.first?.state?.running != nil })
        #expect(await bench.status("once")?.phase == .running)
        bench.runtime.exit(id: "once-app-0", code: 3)
        #expect(await Self.eventually(30) { await bench.status("once")?.phase == .failed })
        let terminated = await bench.status("once")?.containerStatuses?.first?.state?.terminated
        #expect(terminated?.exitCode == 3 && terminated?.reason == "Error")
        #expect(!bench.runtime.log.contains { $0.hasPrefix("create once-app-1") }, "not restarted")

        // Always, removed while running: stopped with SIGTERM, its run deleted, its root unmounted.
        let kept = PodWorker(pod: try bench.pod(uid: "kept"), host: bench.host)
        let keptRunning = Task { await kept.run() }
        defer { keptRunning.cancel() }
        #expect(await Self.eventually(30) { bench.runtime.log.contains("start kept-app-0") })
        #expect(FileManager.default.fileExists(atPath: bench.host.podDirectory(uid: "kept") + "/runs/kept-app-0/rootfs/bin"))
        await kept.remove()
        #expect(await Self.ends(keptRunning, within: 60))
        #expect(bench.runtime.log.contains("kill kept-app-0 \(SIGTERM)"))
        #expect(bench.runtime.list().allSatisfy { $0.annotations?["io.kubernetes.pod.uid"] != "kept" })
        #expect(!FileManager.default.fileExists(atPath: bench.host.podDirectory(uid: "kept")))
        #expect(await bench.reporter.entries["kept"] == nil, "a removal deletes nothing in the API")
        await once.remove()
        #expect(await Self.ends(onceRunning, within: 60))
    }
}
