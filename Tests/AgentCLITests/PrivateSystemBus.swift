import Foundation
import IotkubeTestSupport

/// A real dbus-daemon on a socket of its own (the agent finds it through
/// DBUS_SYSTEM_BUS_ADDRESS), with the logind stand-in (Fixtures/logind_stand_in.py) owning
/// org.freedesktop.login1 on it: what a host without systemd offers the graceful shutdown tests.
final class PrivateSystemBus: @unchecked Sendable {
    static let standIn = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/logind_stand_in.py").path

    /// dbus-daemon, and python3 with its dbus and gi modules (python3-dbus, python3-gi).
    static var available: Bool {
        toolAvailable("dbus-daemon") && toolAvailable("dbus-send")
            && (try? ServerProcess.run("/usr/bin/python3", ["-c", "import dbus, gi"]).status) == 0
    }

    let directory: String
    let daemon: SpawnedProcess
    private(set) var logind: SpawnedProcess
    let delayMaxSeconds: Int
    var address: String { "unix:path=\(directory)/bus" }
    var logPath: String { directory + "/logind.log" }

    init(delayMaxSeconds: Int) throws {
        self.delayMaxSeconds = delayMaxSeconds
        directory = NSTemporaryDirectory() + "iotkube-bus-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let configuration = """
            <!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN" "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
            <busconfig>
              <type>system</type>
              <listen>unix:path=\(directory)/bus</listen>
              <auth>EXTERNAL</auth>
              <policy context="default">
                <allow user="*"/>
                <allow own="*"/>
                <allow send_destination="*"/>
                <allow receive_sender="*"/>
              </policy>
            </busconfig>
            """
        try configuration.write(toFile: directory + "/bus.conf", atomically: true, encoding: .utf8)
        daemon = try SpawnedProcess("/usr/bin/dbus-daemon", ["--config-file=\(directory)/bus.conf", "--nofork", "--nopidfile"], output: .file(directory + "/daemon.log"))
        var waited = 0
        while !FileManager.default.fileExists(atPath: directory + "/bus"), waited < 100 {
            usleep(50_000)
            waited += 1
        }
        logind = try Self.startStandIn(directory: directory, delayMaxSeconds: delayMaxSeconds)
        guard try waitFor("ready", seconds: 20) != nil else { throw TestFailure("the logind stand-in did not start: \(events.joined(separator: "\n"))") }
    }

    static func startStandIn(directory: String, delayMaxSeconds: Int) throws -> SpawnedProcess {
        try SpawnedProcess("/usr/bin/python3", [Self.standIn, String(delayMaxSeconds)], environment: ["DBUS_SYSTEM_BUS_ADDRESS": "unix:path=\(directory)/bus"],
                           output: .file(directory + "/logind.log"))
    }

    /// logind restarts: a new connection owns org.freedesktop.login1.
    func restartLogind() throws {
        logind.terminate()
        logind.waitUntilExit()
        let started = events.filter { $0.hasPrefix("ready") }.count
        logind = try Self.startStandIn(directory: directory, delayMaxSeconds: delayMaxSeconds)
        guard try waitFor("ready", count: started + 1, seconds: 20) != nil else { throw TestFailure("the logind stand-in did not start again: \(events)") }
    }

    /// A PrepareForShutdown(true) in big-endian byte order, sent straight to the last client
    /// that took a lock from another connection.
    func forgeBigEndianShutdown() throws {
        let sent = events.filter { $0.hasPrefix("big-endian") }.count
        logind.signal(SIGHUP)
        guard try waitFor("big-endian", count: sent + 1, seconds: 10) != nil else { throw TestFailure("the big-endian signal was not sent: \(events)") }
    }

    /// The stand-in's lines, without their times.
    var events: [String] {
        (try? String(contentsOfFile: logPath, encoding: .utf8))?.split(separator: "\n").map { line in
            line.split(separator: " ", maxSplits: 1).last.map(String.init) ?? ""
        } ?? []
    }

    /// The stand-in's lines with their times (seconds since boot, as /proc/uptime counts).
    var timedEvents: [(time: Double, event: String)] {
        (try? String(contentsOfFile: logPath, encoding: .utf8))?.split(separator: "\n").compactMap { line in
            let parts = line.split(separator: " ", maxSplits: 1)
            guard parts.count == 2, let time = Double(parts[0]) else { return nil }
            return (time, String(parts[1]))
        } ?? []
    }

    /// The `count`th line starting with `prefix`, waiting up to `seconds`.
    func waitFor(_ prefix: String, count: Int = 1, seconds: Double) throws -> String? {
        let deadline = Date().addingTimeInterval(seconds)
        repeat {
            let matching = events.filter { $0.hasPrefix(prefix) }
            if matching.count >= count { return matching[count - 1] }
            usleep(100_000)
        } while Date() < deadline
        return nil
    }

    /// PrepareForShutdown(true) from logind's connection.
    func announceShutdown() { logind.signal(SIGUSR1) }
    /// PrepareForShutdown(false): the shutdown was cancelled.
    func cancelShutdown() { logind.signal(SIGUSR2) }

    /// A PrepareForShutdown(true) sent straight to `destination` by another client of the bus.
    func forgeShutdown(to destination: String) throws -> String {
        let sent = try ServerProcess.run("/usr/bin/dbus-send", ["--bus=\(address)", "--type=signal", "--dest=\(destination)", "/org/freedesktop/login1",
                                                                "org.freedesktop.login1.Manager.PrepareForShutdown", "boolean:true"])
        guard sent.status == 0 else { throw TestFailure("dbus-send: \(sent.output)") }
        return sent.output
    }

    func stop() {
        for process in [logind, daemon] where process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(atPath: directory)
    }
}
