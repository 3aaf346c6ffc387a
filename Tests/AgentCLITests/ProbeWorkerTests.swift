import Foundation
@testable import Agent
import IotkubeTestSupport
import KubeModel
import Logging
import Synchronization
import Testing

/// The prober in-process, with scripted probe outcomes: one worker per container run and probe
/// kind on its own period, verdicts in the results the pod worker reads, liveness and readiness
/// waiting for the startup probe, and a stop that ends a try in flight.
@Suite(.ownThread) struct ProbeWorkerTests {
    /// Outcomes per probe (named by its exec command), the tries in order, and tries that hang
    /// until they are cancelled.
    final class Script: Sendable {
        struct State {
            var outcomes: [String: [Bool]] = [:]
            var tries: [String] = []
            var failures: [String] = []
            var changes = 0
            var cancelledTries = 0
        }

        let state = Mutex(State())
        let hanging: Set<String>

        init(_ outcomes: [String: [Bool]], hanging: Set<String> = []) {
            state.withLock { $0.outcomes = outcomes }
            self.hanging = hanging
        }

        func tries(_ name: String) -> Int { state.withLock { $0.tries.filter { $0 == name }.count } }

        func perform(_ probe: Probe) async -> ProbeActions.Outcome {
            let name = probe.exec?.command?.first ?? ""
            let success = state.withLock { state -> Bool in
                state.tries.append(name)
                guard var outcomes = state.outcomes[name], !outcomes.isEmpty else { return true }
                let next = outcomes.removeFirst()
                // The last outcome repeats.
                state.outcomes[name] = outcomes.isEmpty ? [next] : outcomes
                return next
            }
            if hanging.contains(name) {
                try? await Task.sleep(for: .seconds(600))
                if Task.isCancelled { state.withLock { $0.cancelledTries += 1 } }
            }
            return success ? .success : .failure("scripted failure")
        }
    }

    static func probe(_ name: String, period: Int32 = 1, initialDelay: Int32 = 0, successes: Int32 = 1, failures: Int32 = 3) -> Probe {
        var probe = Probe()
        probe.exec = ExecAction(command: [name])
        probe.periodSeconds = period
        probe.initialDelaySeconds = initialDelay
        probe.successThreshold = successes
        probe.failureThreshold = failures
        return probe
    }

    /// The workers the pod worker would start for `container`'s run `id`, with the scripted outcomes.
    static func workers(_ container: Container, id: String, startedAt: Int64 = PodClock.bootSeconds(), manager: ProbeManager, script: Script) -> [ProbeWorker] {
        let target = ProbeTarget(containerID: id, container: container, address: "127.0.0.1", exec: nil, startedAt: startedAt)
        let probes: [(ProbeTracker.Kind, Probe?)] = [(.startup, container.startupProbe), (.liveness, container.livenessProbe), (.readiness, container.readinessProbe)]
        return probes.compactMap { kind, probe in
            probe.map {
                ProbeWorker(kind: kind, probe: $0, target: target, results: manager.results,
                            perform: { probe, _, _ in await script.perform(probe) },
                            failed: { message in script.state.withLock { $0.failures.append(message) } },
                            changed: { script.state.withLock { $0.changes += 1 } },
                            logger: Logger(label: "probe-test"))
            }
        }
    }

    /// Polls `condition` every 50 ms for up to `seconds`.
    static func eventually(_ seconds: Double, _ condition: () -> Bool) async -> Bool {
        for _ in 0..<Int(seconds * 20) {
            if condition() { return true }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return condition()
    }

    /// Runs a manager around `body` and stops it afterwards.
    static func withManager(_ body: (ProbeManager) async throws -> Void) async throws {
        let manager = ProbeManager()
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { await manager.run() }
            defer { manager.finish() }
            try await body(manager)
        }
    }

    @Test func livenessAndReadinessWaitForTheStartupProbeWhichEndsWithItsSuccess() async throws {
        var container = Container(name: "app")
        container.startupProbe = Self.probe("startup", failures: 5)
        container.livenessProbe = Self.probe("liveness")
        container.readinessProbe = Self.probe("readiness", successes: 2)
        let script = Script(["startup": [false, true]])
        try await Self.withManager { manager in
            manager.start(Self.workers(container, id: "run-1", manager: manager, script: script))
            #expect(await Self.eventually(30) { manager.results.verdict(.readiness, of: "run-1")?.result == .success })
            #expect(manager.results.verdict(.startup, of: "run-1")?.result == .success)
            let tries = script.state.withLock { $0.tries }
            let startupPassed = try #require(tries.indices.filter { tries[$0] == "startup" }.dropFirst().first)
            #expect(tries.prefix(startupPassed).allSatisfy { $0 == "startup" }, "liveness and readiness waited: \(tries)")
            #expect(script.tries("readiness") >= 2, "two successes before ready")
            #expect(script.state.withLock { $0.failures } == ["Startup probe failed: scripted failure"])
            // The startup probe is done; the others go on.
            let livenessTries = script.tries("liveness")
            #expect(await Self.eventually(10) { script.tries("liveness") > livenessTries })
            #expect(script.tries("startup") == 2)
            #expect(manager.results.verdict(.liveness, of: "run-1")?.result == .success)
        }
    }

    @Test func aFailedLivenessVerdictWakesThePodWorkerOnceAndEndsItsWorker() async throws {
        var container = Container(name: "app")
        container.livenessProbe = Self.probe("liveness", failures: 2)
        let script = Script(["liveness": [true, false]])
        try await Self.withManager { manager in
            manager.start(Self.workers(container, id: "run-1", manager: manager, script: script))
            #expect(await Self.eventually(30) { manager.results.verdict(.liveness, of: "run-1")?.result == .failure })
            #expect(manager.results.verdict(.liveness, of: "run-1")?.message == "scripted failure")
            // A passing liveness probe wakes nobody; the failed verdict does, once.
            #expect(script.state.withLock { $0.changes } == 1)
            try await Task.sleep(for: .seconds(2.5))
            #expect(script.tries("liveness") == 3, "no try after the failed verdict")
            #expect(script.state.withLock { $0.failures }.count == 2)
        }
    }

    @Test func theInitialDelayCountsFromTheRunsStart() async throws {
        var container = Container(name: "app")
        container.readinessProbe = Self.probe("readiness", initialDelay: 30)
        let script = Script([:])
        try await Self.withManager { manager in
            // Started long ago (adopted after an agent restart): no delay left.
            manager.start(Self.workers(container, id: "old", startedAt: PodClock.bootSeconds() - 60, manager: manager, script: script))
            #expect(await Self.eventually(30) { script.tries("readiness") == 1 })
            // Just started: nothing before the delay.
            manager.start(Self.workers(container, id: "new", manager: manager, script: script))
            try await Task.sleep(for: .seconds(1.5))
            #expect(manager.results.verdict(.readiness, of: "new") == nil)
            #expect(manager.probedContainerIDs == ["old", "new"])
        }
    }

    @Test func stoppingARunEndsATryInFlightAndForgetsItsVerdicts() async throws {
        var container = Container(name: "app")
        container.startupProbe = Self.probe("startup")
        container.readinessProbe = Self.probe("slow")
        let script = Script([:], hanging: ["slow"])
        try await Self.withManager { manager in
            manager.start(Self.workers(container, id: "run-1", manager: manager, script: script))
            #expect(await Self.eventually(30) { script.tries("slow") == 1 })
            #expect(manager.results.verdict(.startup, of: "run-1")?.result == .success)
            manager.stop(containerID: "run-1")
            #expect(await Self.eventually(30) { script.state.withLock { $0.cancelledTries } == 1 }, "the hanging try was cancelled")
            #expect(manager.results.verdict(.startup, of: "run-1") == nil)
            #expect(manager.results.verdict(.readiness, of: "run-1") == nil, "a cancelled try is no verdict")
            #expect(manager.probedContainerIDs.isEmpty)
        }
    }

    /// A try that ends just after its run was stopped writes nothing: a verdict about a run that
    /// is no longer probed is dropped.
    @Test func aVerdictAboutARunNoLongerProbedIsDropped() {
        let results = ProbeResults()
        results.set(.init(result: .success), for: .readiness, of: "run-1")
        #expect(results.verdict(.readiness, of: "run-1") == nil, "never probed")
        results.begin(containerID: "run-1")
        results.set(.init(result: .success), for: .readiness, of: "run-1")
        #expect(results.verdict(.readiness, of: "run-1")?.result == .success)
        results.remove(containerID: "run-1")
        results.set(.init(result: .success), for: .readiness, of: "run-1")
        #expect(results.verdict(.readiness, of: "run-1") == nil, "stopped")
    }

    @Test func aTerminatingPodKeepsOnlyItsReadinessProbes() async throws {
        var container = Container(name: "app")
        container.livenessProbe = Self.probe("liveness")
        container.readinessProbe = Self.probe("readiness")
        let script = Script([:])
        try await Self.withManager { manager in
            manager.start(Self.workers(container, id: "run-1", manager: manager, script: script))
            #expect(await Self.eventually(30) { script.tries("liveness") >= 1 && script.tries("readiness") >= 1 })
            manager.stopLivenessAndStartup()
            let liveness = script.tries("liveness"), readiness = script.tries("readiness")
            #expect(await Self.eventually(30) { script.tries("readiness") >= readiness + 2 })
            #expect(script.tries("liveness") == liveness)
        }
    }
}
