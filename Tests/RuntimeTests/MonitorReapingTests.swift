import Foundation
import OCI
import Runtime
import Testing

/// The process that creates containers (the agent, for months) is not left to reap their
/// monitors: each monitor leaves its creator's children before the container starts, so a
/// container that ends, or restarts every few minutes, leaves no zombie behind in the agent.
@Suite(.ownThread, .enabled(if: RuntimeFixture.ready, "needs root (namespaces, mounts, cgroups), busybox-static and gcc"))
struct MonitorReapingTests {
    @Test func endedContainersLeaveNoZombieInTheProcessThatMadeThem() throws {
        let root = RuntimeFixture.stateRoot()
        let runtime = BuiltinRuntime(root: root, helper: RuntimeFixture.agent)
        let bundle = try RuntimeFixture.bundle(["sh", "-c", "sleep 0.2; exit 3"])
        var monitors: [pid_t] = []
        for round in 0..<3 {
            let id = "brief-\(round)"
            let record: ContainerRecord = try runtime.create(id: id, bundle: bundle, options: BuiltinRuntime.CreateOptions(logPath: bundle + "/\(id).log"))
            defer { try? runtime.delete(id: id, force: true) }
            // While the container waits for `start`, its monitor runs, and is nobody's child here.
            let parent = Self.parent(of: record.monitorPid)
            #expect(parent != nil, "monitor \(record.monitorPid) of \(id) is gone before the container started")
            #expect(parent != getpid(), "monitor \(record.monitorPid) of \(id) is a child of the process that created it")
            try runtime.start(id: id)
            for _ in 0..<200 where runtime.exitRecord(id: id) == nil { Thread.sleep(forTimeInterval: 0.05) }
            #expect(runtime.exitRecord(id: id)?.exitCode == 3)
            monitors.append(record.monitorPid)
        }
        // The monitors have ended (they write the exit record, then exit): none of them lingers
        // as a zombie child of this process.
        Thread.sleep(forTimeInterval: 0.5)
        let zombies = Self.zombieChildren().filter { monitors.contains($0.pid) }
        #expect(zombies.isEmpty, "zombie children: \(zombies)")
    }

    /// The parent pid of `pid`, from /proc (nil when it is gone).
    static func parent(of pid: pid_t) -> pid_t? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        return fields.count > 1 ? pid_t(fields[1]) : nil
    }

    /// This process's children that have exited and were not reaped.
    static func zombieChildren() -> [(pid: pid_t, command: String)] {
        let me = getpid()
        return ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { entry in
            guard let pid = pid_t(entry),
                  let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                  let open = stat.firstIndex(of: "("), let close = stat.lastIndex(of: ")") else { return nil }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            guard fields.count > 1, fields[0] == "Z", pid_t(fields[1]) == me else { return nil }
            return (pid, String(stat[stat.index(after: open)..<close]))
        }
    }
}
