import Foundation
@testable import Agent
import OCI
@testable import Runtime
import Synchronization

/// A container runtime in memory for in-process pod worker tests: containers are records that
/// start, exit when told to (or on a signal, as a process that handles none would) and are
/// deleted, with every call logged. Bundles are read for their annotations, as the real one does.
final class FakePodRuntime: PodRuntime {
    struct Container {
        var record: ContainerRecord
        var status: Runtime.ContainerStatus
        var exit: ContainerExit?
    }

    let root: String
    let helper = "/nonexistent/iotkube-agent"
    let bundleVersion: String? = nil
    private let containers = Mutex<[String: Container]>([:])
    private let calls = Mutex<[String]>([])
    /// The exit status every exec (probe, hook) reports.
    let execStatus = Mutex<Int32>(0)
    /// Signals the containers' processes ignore (SIGKILL cannot be).
    let ignoredSignals = Mutex<Set<Int32>>([])

    init(root: String) { self.root = root }

    /// "create ID", "start ID", "kill ID SIGNAL", "delete ID" in order.
    var log: [String] { calls.withLock { $0 } }

    private func note(_ call: String) { calls.withLock { $0.append(call) } }

    /// Added to the wall clock of the records (a clock jump, as after NTP on a board without RTC).
    let wallOffset = WallClockOffset()

    private func now() -> Int64 { Int64(Date().timeIntervalSince1970 * 1_000_000_000) + wallOffset.seconds * 1_000_000_000 }

    func create(id: String, bundle: String, options: BuiltinRuntime.CreateOptions) throws(RuntimeError) -> ContainerRecord {
        let spec = try BuiltinRuntime.loadSpec(bundle: bundle)
        let record = ContainerRecord(ociVersion: spec.ociVersion, id: id, bundle: bundle, pid: 0, processStartTicks: 0, monitorPid: 0, monitorStartTicks: nil,
                                     cgroupPath: "", annotations: spec.annotations, createdAt: now(), startedAt: nil, cgroupProcs: nil)
        try containers.withLock { (containers) throws(RuntimeError) in
            guard containers[id] == nil else { throw RuntimeError("container \(id) exists") }
            containers[id] = Container(record: record, status: .created)
        }
        note("create \(id)")
        return record
    }

    func start(id: String) throws(RuntimeError) {
        try containers.withLock { (containers) throws(RuntimeError) in
            guard containers[id]?.status == .created else { throw RuntimeError("container \(id) is not created") }
            containers[id]?.status = .running
            containers[id]?.record.startedAt = now()
        }
        note("start \(id)")
    }

    func state(id: String) throws(RuntimeError) -> OCIState {
        let container = try lookup(id)
        return OCIState(ociVersion: container.record.ociVersion, id: id, status: container.status, pid: nil, bundle: container.record.bundle,
                        annotations: container.record.annotations)
    }

    func record(id: String) throws(RuntimeError) -> ContainerRecord { try lookup(id).record }

    func exitRecord(id: String) -> ContainerExit? { (try? lookup(id))?.exit }

    /// Ends a running container's process with `code` (or by `signal`).
    func exit(id: String, code: Int32, signal: Int32 = 0) {
        containers.withLock { containers in
            guard containers[id]?.status == .running || containers[id]?.status == .created else { return }
            containers[id]?.status = .stopped
            containers[id]?.exit = ContainerExit(pid: 0, exitCode: code, signal: signal, finishedAt: now(), error: "")
        }
    }

    func kill(id: String, signal: Int32) throws(RuntimeError) {
        let status = try lookup(id).status
        guard status == .running || status == .created else { throw RuntimeError("container \(id) is not running") }
        note("kill \(id) \(signal)")
        if signal != SIGKILL, ignoredSignals.withLock({ $0.contains(signal) }) { return }
        exit(id: id, code: 128 + signal, signal: signal)
    }

    func delete(id: String, force: Bool) throws(RuntimeError) {
        let status = try lookup(id).status
        guard force || status == .stopped else { throw RuntimeError("container \(id) is \(status.rawValue)") }
        _ = containers.withLock { $0.removeValue(forKey: id) }
        note("delete \(id)")
    }

    func list() -> [OCIState] {
        let ids = containers.withLock { Array($0.keys) }.sorted()
        return ids.compactMap { try? state(id: $0) }
    }

    func execAttached(id: String, process: RuntimeSpec.Process, stdin: Bool) throws(RuntimeError) -> AttachedProcess {
        throw RuntimeError("the fake runtime runs no attached processes")
    }

    func execCapturing(
        id: String, process: RuntimeSpec.Process, timeoutSeconds: Double, cancelled: (@Sendable () -> Bool)?
    ) throws(RuntimeError) -> CapturedProcess.Outcome {
        note("exec \(id) \(process.args?.joined(separator: " ") ?? "")")
        return CapturedProcess.Outcome(status: execStatus.withLock { $0 }, output: [], errorOutput: [], timedOut: false)
    }

    func spec(bundle: String) throws(RuntimeError) -> RuntimeSpec { try BuiltinRuntime.loadSpec(bundle: bundle) }

    func statistics(of record: ContainerRecord) -> CgroupStatistics { CgroupStatistics() }

    private func lookup(_ id: String) throws(RuntimeError) -> Container {
        guard let container = containers.withLock({ $0[id] }) else { throw RuntimeError("container \(id) does not exist") }
        return container
    }
}

/// Seconds added to a fake wall clock, shared by the clocks that follow it.
final class WallClockOffset: Sendable {
    private let value = Mutex<Int64>(0)
    var seconds: Int64 { value.withLock { $0 } }
    func jump(by seconds: Int64) { value.withLock { $0 += seconds } }
}
