import Foundation
@testable import Agent
import IotkubeTestSupport
import KubeModel
import Synchronization
import Testing

/// A board without a real-time clock: NTP moves the wall clock by a year while pods run. The
/// pod worker's decisions (crash-loop back-off, grace periods, the active deadline, probes'
/// initial delays) stay on the boot clock; the jump is made in the worker's wall clock and in
/// the runtime's records, as the monitor would write them.
@Suite(.ownThread, .enabled(if: getuid() == 0, "needs root (container roots are overlay mounts)"))
struct PodWorkerClockTests {
    static let year: Int64 = 366 * 86_400

    /// A bench whose wall clock (worker and runtime) can jump.
    struct JumpingBench {
        let bench: PodWorkerTests.Bench
        let host: PodHost

        init() throws {
            bench = try PodWorkerTests.Bench(blockingPulls: false)
            let offset = bench.runtime.wallOffset
            var host = bench.host
            host.clock = PodClock(sinceBoot: { PodClock.bootSeconds() }, wall: {
                var now = Timestamp.now()
                now.seconds += offset.seconds
                return now
            })
            self.host = host
        }

        func jump(by seconds: Int64) { bench.runtime.wallOffset.jump(by: seconds) }

        func pod(_ uid: String, _ spec: String) throws -> Pod {
            try KubeJSON.decode(Pod.self, from: """
                {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "\(uid)", "namespace": "default", "uid": "\(uid)"},
                 "spec": {"hostNetwork": true, \(spec)}}
                """)
        }
    }

    @Test func aCrashLoopBacksOffOnTheBootClockThroughAJumpBack() async throws {
        let jumping = try JumpingBench()
        defer { jumping.bench.tearDown() }
        let worker = PodWorker(pod: try jumping.pod("crashing", #""containers": [{"name": "app", "image": "registry.invalid/app:1"}]"#), host: jumping.host)
        let running = Task { await worker.run() }
        defer { running.cancel() }
        #expect(await PodWorkerTests.eventually(30) { jumping.bench.runtime.log.contains("start crashing-app-0") })
        jumping.bench.runtime.exit(id: "crashing-app-0", code: 1)
        #expect(await PodWorkerTests.eventually(10) { await jumping.bench.status("crashing")?.containerStatuses?.first?.state?.waiting?.reason == "CrashLoopBackOff" })
        // A year back: the 10 s back-off must not become a year.
        jumping.jump(by: -Self.year)
        #expect(await PodWorkerTests.eventually(40) { jumping.bench.runtime.log.contains("start crashing-app-1") }, "\(jumping.bench.runtime.log)")
        await worker.remove()
        #expect(await PodWorkerTests.ends(running, within: 60))
    }

    /// Deleted while the agent was away: the grace period counts from the new worker's start,
    /// and a jump back before it runs must not make it a year.
    @Test func aJumpBackDoesNotStretchTheGracePeriod() async throws {
        let jumping = try JumpingBench()
        defer { jumping.bench.tearDown() }
        jumping.bench.runtime.ignoredSignals.withLock { $0 = [SIGTERM] }
        let pod = try jumping.pod("stubborn", #""terminationGracePeriodSeconds": 3, "containers": [{"name": "app", "image": "registry.invalid/app:1"}]"#)
        let first = PodWorker(pod: pod, host: jumping.host)
        let firstRunning = Task { await first.run() }
        #expect(await PodWorkerTests.eventually(30) { jumping.bench.runtime.log.contains("start stubborn-app-0") })
        // The agent stops (its containers run on); the pod is deleted meanwhile.
        firstRunning.cancel()
        #expect(await PodWorkerTests.ends(firstRunning, within: 30))
        var deleted = pod
        deleted.metadata.deletionTimestamp = .now()
        deleted.metadata.deletionGracePeriodSeconds = 3
        let second = PodWorker(pod: deleted, host: jumping.host)
        jumping.jump(by: -Self.year)
        let running = Task { await second.run() }
        defer { running.cancel() }
        // SIGTERM is ignored: SIGKILL follows after 3 s, not a year.
        #expect(await PodWorkerTests.ends(running, within: 40), "\(jumping.bench.runtime.log)")
        #expect(jumping.bench.runtime.log.contains("kill stubborn-app-0 \(SIGKILL)"), "\(jumping.bench.runtime.log)")
    }

    @Test func aJumpForwardDoesNotEndAnActiveDeadlineNorSkipAProbesInitialDelay() async throws {
        let jumping = try JumpingBench()
        defer { jumping.bench.tearDown() }
        jumping.bench.runtime.execStatus.withLock { $0 = 1 }
        let worker = PodWorker(pod: try jumping.pod("steady", """
            "activeDeadlineSeconds": 3600, "terminationGracePeriodSeconds": 1,
            "containers": [{"name": "app", "image": "registry.invalid/app:1",
                            "livenessProbe": {"exec": {"command": ["check"]}, "initialDelaySeconds": 8, "periodSeconds": 1, "failureThreshold": 1}}]
            """), host: jumping.host)
        let running = Task { await worker.run() }
        defer { running.cancel() }
        #expect(await PodWorkerTests.eventually(30) { jumping.bench.runtime.log.contains("start steady-app-0") })
        jumping.jump(by: Self.year)
        try await Task.sleep(for: .seconds(4))
        // Within the probe's 8 s no probe ran, and the hour-long deadline has not passed.
        #expect(!jumping.bench.runtime.log.contains { $0.hasPrefix("exec steady-app-0") }, "\(jumping.bench.runtime.log)")
        let status = await jumping.bench.status("steady")
        #expect(status?.phase == .running && status?.reason == nil, "\(String(describing: status))")
        // The probe still runs when its delay has passed (the clock is not simply stopped).
        #expect(await PodWorkerTests.eventually(30) { jumping.bench.runtime.log.contains { $0.hasPrefix("exec steady-app-0") } }, "\(jumping.bench.runtime.log)")
        await worker.remove()
        #expect(await PodWorkerTests.ends(running, within: 60))
    }

    @Test func anActiveDeadlineCountsOnTheBootClock() async throws {
        let jumping = try JumpingBench()
        defer { jumping.bench.tearDown() }
        let worker = PodWorker(pod: try jumping.pod("limited", """
            "activeDeadlineSeconds": 3, "terminationGracePeriodSeconds": 1, "containers": [{"name": "app", "image": "registry.invalid/app:1"}]
            """), host: jumping.host)
        let running = Task { await worker.run() }
        defer { running.cancel() }
        #expect(await PodWorkerTests.eventually(30) { jumping.bench.runtime.log.contains("start limited-app-0") })
        jumping.jump(by: -Self.year)
        #expect(await PodWorkerTests.eventually(30) { await jumping.bench.status("limited")?.reason == "DeadlineExceeded" })
        await worker.remove()
        #expect(await PodWorkerTests.ends(running, within: 60))
    }
}

/// Event aggregation (repeats within 10 minutes counted, the count written every 30 s) is timed
/// on the boot clock: a wall clock a year back neither freezes the count nor merges for a year.
@Suite struct PodEventClockTests {
    final class FakeClock: Sendable {
        let sinceBoot = Mutex<Int64>(1000)
        let wallOffset = WallClockOffset()
        var clock: PodClock {
            PodClock(sinceBoot: { self.sinceBoot.withLock { $0 } }, wall: {
                var now = Timestamp.now()
                now.seconds += self.wallOffset.seconds
                return now
            })
        }
    }

    @Test func repeatsAreCountedOnTheBootClockThroughAJumpBack() async throws {
        let fake = FakeClock()
        let recorder = PodEventRecorder(nodeName: "board", clock: fake.clock)
        let pod = try KubeJSON.decode(Pod.self, from: #"{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default", "uid": "u"}}"#)
        await recorder.record(pod, type: "Warning", reason: "BackOff", message: "Back-off restarting failed container")
        #expect(await recorder.queue.count == 1)
        // 10 s later a repeat is only counted; 40 s later, with the wall clock a year back, the
        // count is written.
        fake.sinceBoot.withLock { $0 += 10 }
        await recorder.record(pod, type: "Warning", reason: "BackOff", message: "Back-off restarting failed container")
        #expect(await recorder.queue.count == 1)
        fake.wallOffset.jump(by: -PodWorkerClockTests.year)
        fake.sinceBoot.withLock { $0 += 30 }
        await recorder.record(pod, type: "Warning", reason: "BackOff", message: "Back-off restarting failed container")
        let queued = await recorder.queue
        #expect(queued.count == 2 && queued.last?.event.count == 3, "\(queued.map(\.event.count))")
        #expect(queued.last?.event.metadata.name == queued.first?.event.metadata.name, "the same event, counted")
        // Past 10 minutes on the boot clock: a new event.
        fake.sinceBoot.withLock { $0 += 600 }
        await recorder.record(pod, type: "Warning", reason: "BackOff", message: "Back-off restarting failed container")
        let later = await recorder.queue
        #expect(later.count == 3 && later.last?.event.count == 1 && later.last?.event.metadata.name != later.first?.event.metadata.name)
    }
}
