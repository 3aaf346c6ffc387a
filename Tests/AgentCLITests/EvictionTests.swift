import IotkubeTestSupport
import KubeModel
import Runtime
import Testing
import FoundationEssentials

@testable import Agent

/// The eviction manager's decisions: settings as the kubelet reads them, thresholds over time
/// (grace periods, minimum reclaim, the pressure transition period), the order pods are
/// evicted in, and the messages they carry.
@Suite(.ownThread) struct EvictionTests {
    @Test func defaultsAndConfiguredThresholds() throws {
        let defaults = try EvictionSettings.parse(hard: nil, soft: nil, softGracePeriod: nil, minimumReclaim: nil, transitionPeriod: nil, maximumPodGracePeriod: nil)
        #expect(defaults.thresholds == EvictionThreshold.defaults)
        #expect(defaults.pressureTransitionPeriod == .seconds(300))

        let configured = try EvictionSettings.parse(
            hard: ["memory.available": "200Mi", "nodefs.available": "12.5%"], soft: ["memory.available": "300Mi"],
            softGracePeriod: ["memory.available": "1m30s"], minimumReclaim: ["memory.available": "50Mi"], transitionPeriod: "30s",
            maximumPodGracePeriod: 20)
        // A configured evictionHard replaces the defaults as a whole.
        #expect(configured.thresholds.count == 3)
        let memory = try #require(configured.thresholds.first { $0.signal == .memoryAvailable && $0.isHard })
        #expect(memory.value == .quantity(200 << 20))
        #expect(memory.minimumReclaim == .quantity(50 << 20))
        #expect(configured.thresholds.contains { $0.signal == .nodefsAvailable && $0.value == .percentage(0.125) })
        #expect(configured.thresholds.contains { $0.signal == .memoryAvailable && $0.gracePeriod == .seconds(90) })
        #expect(configured.pressureTransitionPeriod == .seconds(30))
        #expect(configured.maximumPodGracePeriod == 20)
        let off = try EvictionSettings.parse(hard: [:], soft: nil, softGracePeriod: nil, minimumReclaim: nil, transitionPeriod: nil, maximumPodGracePeriod: nil)
        #expect(off.thresholds.isEmpty)
    }

    @Test func badSettingsNameTheFieldAndValue() {
        func error(_ body: () throws -> EvictionSettings) -> String {
            do { _ = try body(); return "" } catch { return "\(error)" }
        }
        #expect(error { try EvictionSettings.parse(hard: ["memory.free": "1Gi"], soft: nil, softGracePeriod: nil, minimumReclaim: nil, transitionPeriod: nil, maximumPodGracePeriod: nil) }
            .contains("evictionHard: unknown signal \"memory.free\""))
        #expect(error { try EvictionSettings.parse(hard: ["nodefs.available": "120%"], soft: nil, softGracePeriod: nil, minimumReclaim: nil, transitionPeriod: nil, maximumPodGracePeriod: nil) }
            .contains("evictionHard.nodefs.available: \"120%\""))
        #expect(error { try EvictionSettings.parse(hard: ["memory.available": "lots"], soft: nil, softGracePeriod: nil, minimumReclaim: nil, transitionPeriod: nil, maximumPodGracePeriod: nil) }
            .contains("evictionHard.memory.available: \"lots\" is neither a quantity"))
        #expect(error { try EvictionSettings.parse(hard: nil, soft: ["memory.available": "1Gi"], softGracePeriod: nil, minimumReclaim: nil, transitionPeriod: nil, maximumPodGracePeriod: nil) }
            .contains("evictionSoft.memory.available needs a grace period"))
        #expect(error { try EvictionSettings.parse(hard: nil, soft: ["memory.available": "1Gi"], softGracePeriod: ["memory.available": "soon"], minimumReclaim: nil, transitionPeriod: nil, maximumPodGracePeriod: nil) }
            .contains("evictionSoftGracePeriod.memory.available: \"soon\" is not a duration"))
        #expect(error { try EvictionSettings.parse(hard: nil, soft: nil, softGracePeriod: nil, minimumReclaim: nil, transitionPeriod: "5 minutes", maximumPodGracePeriod: nil) }
            .contains("evictionPressureTransitionPeriod"))
        #expect(EvictionSettings.parseDuration("2h5m0.5s") == .milliseconds((2 * 3600 + 5 * 60) * 1000 + 500))
        #expect(EvictionSettings.parseDuration("10") == nil)
    }

    static func observation(memory: Int64, disk: Int64 = 50, pids: Int64 = 30000) -> NodeResourceObservation {
        NodeResourceObservation(readings: [
            .memoryAvailable: .init(available: memory << 20, capacity: 1024 << 20),
            .nodefsAvailable: .init(available: disk, capacity: 100),
            .pidAvailable: .init(available: pids, capacity: 32768),
        ])
    }

    @Test func hardSoftReclaimAndTransition() throws {
        let settings = try EvictionSettings.parse(
            hard: ["memory.available": "100Mi", "nodefs.available": "10%"], soft: ["memory.available": "200Mi"],
            softGracePeriod: ["memory.available": "30s"], minimumReclaim: ["memory.available": "50Mi"], transitionPeriod: "60s",
            maximumPodGracePeriod: nil)
        var tracker = EvictionThresholdTracker(settings: settings)
        let start = ContinuousClock.now
        // Above every threshold: nothing.
        var evaluation = tracker.update(Self.observation(memory: 500), now: start)
        #expect(evaluation.actionable.isEmpty && evaluation.conditions.isEmpty)
        // Below the soft one: the condition is set at once, action waits for the grace period.
        evaluation = tracker.update(Self.observation(memory: 150), now: start + .seconds(10))
        #expect(evaluation.actionable.isEmpty)
        #expect(evaluation.conditions == ["MemoryPressure"])
        evaluation = tracker.update(Self.observation(memory: 150), now: start + .seconds(41))
        #expect(evaluation.actionable.map(\.isHard) == [false])
        // Below the hard one: acted on at once, hard before soft.
        evaluation = tracker.update(Self.observation(memory: 90), now: start + .seconds(42))
        #expect(evaluation.actionable.map(\.isHard) == [true, false])
        // Back above 100Mi but not above 100Mi + 50Mi: the hard threshold stays met.
        evaluation = tracker.update(Self.observation(memory: 120), now: start + .seconds(43))
        #expect(evaluation.actionable.first?.isHard == true)
        // Reclaimed: nothing to do, yet MemoryPressure stays for the transition period.
        evaluation = tracker.update(Self.observation(memory: 600), now: start + .seconds(44))
        #expect(evaluation.actionable.isEmpty)
        #expect(evaluation.conditions == ["MemoryPressure"])
        evaluation = tracker.update(Self.observation(memory: 600), now: start + .seconds(44 + 61))
        #expect(evaluation.conditions.isEmpty)
        // Disk and pids map to their own conditions.
        evaluation = tracker.update(Self.observation(memory: 600, disk: 5), now: start + .seconds(200))
        #expect(evaluation.conditions == ["DiskPressure"])
        #expect(evaluation.actionable.map(\.signal) == [.nodefsAvailable])
    }

    static func usage(_ name: String, memoryRequest: String? = nil, memory: Int64, disk: Int64 = 0, priority: Int32? = nil, processes: Int64 = 1) -> PodResourceUsage {
        var container = Container(name: "app", image: "busybox")
        if let memoryRequest {
            container.resources = ResourceRequirements()
            container.resources?.requests = ["memory": Quantity(stringLiteral: memoryRequest)]
        }
        var spec = PodSpec(containers: [container])
        spec.priority = priority
        var pod = Pod(metadata: ObjectMeta(name: name, namespace: "default"), spec: spec)
        pod.metadata.uid = name
        var usage = PodResourceUsage(pod: pod)
        usage.memoryBytes = memory << 20
        usage.diskBytes = disk << 20
        usage.processes = processes
        usage.containers = [.init(name: "app", memoryBytes: memory << 20, diskBytes: disk << 20)]
        return usage
    }

    @Test func podsAreEvictedInTheKubeletsOrder() {
        let pods = [
            Self.usage("guaranteed-big", memoryRequest: "500Mi", memory: 400),
            Self.usage("burstable-over", memoryRequest: "100Mi", memory: 150),
            Self.usage("besteffort-small", memory: 20),
            Self.usage("besteffort-big", memory: 60),
            Self.usage("besteffort-important", memory: 300, priority: 1000),
        ]
        // Over request first (BestEffort requests nothing), lower priority first, then the larger excess.
        #expect(EvictionRanking.rank(pods, for: .memoryAvailable).map { $0.pod.metadata.name ?? "" }
            == ["besteffort-big", "burstable-over", "besteffort-small", "besteffort-important", "guaranteed-big"])
        let byProcesses = [Self.usage("few", memory: 1, processes: 2), Self.usage("many", memory: 1, processes: 40),
                           Self.usage("many-important", memory: 1, priority: 10, processes: 400)]
        #expect(EvictionRanking.rank(byProcesses, for: .pidAvailable).map { $0.pod.metadata.name ?? "" } == ["many", "few", "many-important"])
        let byDisk = [Self.usage("writer", memory: 1, disk: 300), Self.usage("quiet", memory: 1, disk: 2)]
        #expect(EvictionRanking.rank(byDisk, for: .nodefsAvailable).first?.pod.metadata.name == "writer")
    }

    @Test func messagesNameTheResourceThresholdAndContainers() throws {
        let threshold = EvictionThreshold(signal: .memoryAvailable, value: .quantity(100 << 20))
        let message = EvictionRanking.message(for: Self.usage("hog", memoryRequest: "64Mi", memory: 300), threshold: threshold,
                                              reading: .init(available: 80 << 20, capacity: 1 << 30))
        #expect(message == "The node was low on resource: memory. Threshold quantity: 100Mi, available: 80Mi. Container app was using 300Mi, request is 64Mi, has larger consumption of memory. ")
        let disk = EvictionThreshold(signal: .nodefsAvailable, value: .percentage(0.1))
        let diskMessage = EvictionRanking.message(for: Self.usage("writer", memory: 1, disk: 200), threshold: disk,
                                                  reading: .init(available: 5 << 20, capacity: 100 << 20))
        #expect(diskMessage.hasPrefix("The node was low on resource: ephemeral-storage. Threshold quantity: 10%, available: 5Mi. Container app was using 200Mi, request is 0"))
    }

    @Test func memoryStalledOnTheWholeBoardIsMemoryPressureOnceItHolds() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("eviction-psi-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.createDirectory(atPath: root + "/proc/pressure", withIntermediateDirectories: true)
        let file = root + "/proc/pressure/memory"
        func observe(full: String) throws -> NodeResourceObservation {
            try "some avg10=60.00 avg60=30.00 avg300=9.00 total=123456789\nfull avg10=\(full) avg60=20.00 avg300=5.00 total=98765432\n"
                .write(toFile: file, atomically: true, encoding: .utf8)
            return NodeResourceObservation.observe(host: HostReader(root: root), nodefsPath: "/", imagefsPath: "/")
        }
        #expect(try observe(full: "34.50")[.memoryPressure] == .init(available: 6550, capacity: 10_000))
        let configuration = try AgentConfiguration.load(try AgentNetworkConfigurationTests.file("memoryPressureStallPercent: 25\nmemoryPressureStallGracePeriod: 20s\n"))
        let settings = try configuration.evictionSettings()
        let threshold = try #require(settings.thresholds.first { $0.signal == .memoryPressure })
        var tracker = EvictionThresholdTracker(settings: settings)
        let start = ContinuousClock.now
        // 10 % stalled: nothing; 34.5 %: the condition at once, eviction after the grace period.
        var evaluation = tracker.update(try observe(full: "10.00"), now: start)
        #expect(!evaluation.conditions.contains("MemoryPressure"))
        evaluation = tracker.update(try observe(full: "34.50"), now: start + .seconds(1))
        #expect(evaluation.conditions.contains("MemoryPressure") && !evaluation.actionable.contains(threshold))
        evaluation = tracker.update(try observe(full: "34.50"), now: start + .seconds(22))
        #expect(evaluation.actionable.contains(threshold))
        let message = EvictionRanking.message(for: Self.usage("hog", memoryRequest: "64Mi", memory: 300), threshold: threshold,
                                              reading: .init(available: 6550, capacity: 10_000))
        #expect(message == "The node was low on resource: memory. Memory was fully stalled 34.5% of the last 10 s, threshold 25%. Container app was using 300Mi, request is 64Mi, has larger consumption of memory. ")
        // A board without PSI has no such reading, and the kubelet's fields do not take the signal.
        try FileManager.default.removeItem(atPath: file)
        #expect(NodeResourceObservation.observe(host: HostReader(root: root), nodefsPath: "/", imagefsPath: "/")[.memoryPressure] == nil)
        #expect(throws: EvictionSettingsError.self) {
            _ = try EvictionSettings.parse(hard: ["memory.pressure": "50%"], soft: nil, softGracePeriod: nil, minimumReclaim: nil, transitionPeriod: nil, maximumPodGracePeriod: nil)
        }
        for (section, message) in [("memoryPressureStallPercent: 100\n", "must be above 0 and below 100"), ("memoryPressureStallGracePeriod: 5s\n", "needs memoryPressureStallPercent"),
                                   ("memoryPressureStallPercent: 20\nmemoryPressureStallGracePeriod: forever\n", "is not a duration")] {
            let path = try AgentNetworkConfigurationTests.file(section)
            #expect { _ = try AgentConfiguration.load(path) } throws: { "\($0)".contains(message) }
        }
    }

    @Test func aPodStalledAtItsOwnLimitIsNotTheBoardsShortage() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("stall-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        func cgroup(_ path: String, full: String? = nil, current: String, max: String) throws {
            try FileManager.default.createDirectory(atPath: root + "/" + path, withIntermediateDirectories: true)
            if let full { try "some avg10=\(full) avg60=0 avg300=0 total=1\nfull avg10=\(full) avg60=0 avg300=0 total=1\n".write(toFile: root + "/" + path + "/memory.pressure", atomically: true, encoding: .utf8) }
            try current.write(toFile: root + "/" + path + "/memory.current", atomically: true, encoding: .utf8)
            try max.write(toFile: root + "/" + path + "/memory.max", atomically: true, encoding: .utf8)
        }
        // At its pod limit (40 %); stalled with neither it nor a container at a limit (50 %); a
        // container at its limit in a pod without one (60 %): the last counts.
        try cgroup("kubepods/burstable/poda", full: "40.00", current: "95\n", max: "100\n")
        try cgroup("kubepods/burstable/podb", full: "50.00", current: "10\n", max: "max\n")
        try cgroup("kubepods/burstable/podb/c", current: "10\n", max: "100\n")
        try cgroup("kubepods/podc", full: "60.00", current: "99\n", max: "max\n")
        try cgroup("kubepods/podc/c", current: "99\n", max: "100\n")
        let cgroups = PodCgroups(manager: CgroupV2Manager(root: root), nodeLimits: nil, podPidsLimit: nil)
        #expect(cgroups.selfLimitedMemoryStall() == 60)
        try "1\n".write(toFile: root + "/kubepods/podc/c/memory.current", atomically: true, encoding: .utf8)
        try "1\n".write(toFile: root + "/kubepods/podc/memory.current", atomically: true, encoding: .utf8)
        #expect(cgroups.selfLimitedMemoryStall() == 40)
    }

    @Test func pressureStallInformationIsParsedAndBounded() {
        let parsed = PressureStall(parsing: "some avg10=1.50 avg60=0.75 avg300=0.10 total=4242\nfull avg10=0.50 avg60=0.25 avg300=0.00 total=42\n")
        #expect(parsed?.some == .init(avg10: 1.5, avg60: 0.75, avg300: 0.1, totalMicroseconds: 4242))
        #expect(parsed?.full.totalMicroseconds == 42)
        #expect(PressureStall(parsing: "some avg10=900 avg60=nan avg300=-3 total=-9\n")?.some == .init(avg10: 100, avg60: 0, avg300: 0, totalMicroseconds: 0))
        #expect(PressureStall(parsing: "garbage") == nil)
    }

    @Test func signalsAreReadFromTheHost() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("eviction-host-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.createDirectory(atPath: root + "/proc/sys/kernel", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: root + "/state", withIntermediateDirectories: true)
        try "MemTotal:        1000000 kB\nMemFree:          20000 kB\nMemAvailable:     90000 kB\n".write(toFile: root + "/proc/meminfo", atomically: true, encoding: .utf8)
        try "0.52 0.58 0.59 3/1187 123456\n".write(toFile: root + "/proc/loadavg", atomically: true, encoding: .utf8)
        try "4194304\n".write(toFile: root + "/proc/sys/kernel/pid_max", atomically: true, encoding: .utf8)
        try "2000\n".write(toFile: root + "/proc/sys/kernel/threads-max", atomically: true, encoding: .utf8)
        let observed = NodeResourceObservation.observe(host: HostReader(root: root), nodefsPath: "/state", imagefsPath: "/state")
        #expect(observed[.memoryAvailable] == .init(available: 90000 * 1024, capacity: 1000000 * 1024))
        #expect(observed[.pidAvailable] == .init(available: 2000 - 1187, capacity: 2000))
        let disk = try #require(observed[.nodefsAvailable])
        #expect(disk.capacity > 0 && disk.available <= disk.capacity)
        // The same filesystem: imagefs reads as nodefs.
        #expect(observed[.imagefsAvailable]?.capacity == disk.capacity)
        // With the default thresholds this host is under memory pressure (88Mi < 100Mi).
        var tracker = EvictionThresholdTracker(settings: EvictionSettings())
        #expect(tracker.update(observed, now: .now).conditions.contains("MemoryPressure"))
    }
}
