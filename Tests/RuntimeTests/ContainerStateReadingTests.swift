import Foundation
import IotkubeTestSupport
@testable import Runtime
import Testing

/// What the pod workers read every second for each container: the process's start time from
/// /proc (a name may hold spaces and parentheses) and the container record, decoded once per
/// version of its file.
@Suite(.ownThread) struct ContainerStateReadingTests {
    /// The start time as the whole-line split reads it (the reference).
    static func referenceStartTicks(_ pid: Int32) -> UInt64? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = text.lastIndex(of: ")") else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ")
        return fields.count > 19 ? UInt64(fields[19]) : nil
    }

    @Test func startTicksOfProcessesWithAwkwardNames() throws {
        #expect(ProcessInfoReader.startTicks(getpid()) == Self.referenceStartTicks(getpid()))
        #expect(ProcessInfoReader.startTicks(getpid()) != nil)
        #expect(ProcessInfoReader.isAlive(getpid()))
        // A command named to confuse a parser that splits at the first parenthesis or space.
        let directory = NSTemporaryDirectory() + "iotkube-stat-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let awkward = directory + "/a) 1 2 (b"
        try FileManager.default.createSymbolicLink(atPath: awkward, withDestinationPath: "/bin/sleep")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: awkward)
        process.arguments = ["2"]
        try process.run()
        defer { process.waitUntilExit() }
        let pid = process.processIdentifier
        let comm = try String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8)
        #expect(comm.contains(")"), "the name reached the kernel: \(comm)")
        #expect(ProcessInfoReader.startTicks(pid) == Self.referenceStartTicks(pid))
        #expect(ProcessInfoReader.startTicks(pid) != nil)
        #expect(ProcessInfoReader.isAlive(pid))
        #expect(ProcessInfoReader.startTicks(999_999_999) == nil)
        #expect(!ProcessInfoReader.isAlive(999_999_999))
    }

    @Test func recordsAreDecodedOncePerVersionOfTheirFile() throws {
        let directory = NSTemporaryDirectory() + "iotkube-records-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let runtime = BuiltinRuntime(root: directory)
        var record = ContainerRecord(ociVersion: "1.2.0", id: "c1", bundle: "/b", pid: 42, processStartTicks: 7, monitorPid: 43, monitorStartTicks: 8,
                                     cgroupPath: "/x", annotations: nil, createdAt: 1_700_000_000, startedAt: nil)
        try FileManager.default.createDirectory(atPath: directory + "/c1", withIntermediateDirectories: true)
        try runtime.save(record)
        let cache = runtime.records
        var decodes = 0
        func read() throws -> ContainerRecord? {
            try cache.record(at: directory + "/c1/state.json") { bytes in
                decodes += 1
                return try JSONDecoder().decode(ContainerRecord.self, from: Data(bytes))
            }
        }
        #expect(try read() == record)
        #expect(try read() == record)
        #expect(decodes == 1, "an unchanged file is not decoded again")
        // A replaced record (a new file renamed over) is read anew.
        record.startedAt = 1_700_000_001
        try runtime.save(record)
        #expect(try read() == record)
        #expect(decodes == 2)
        #expect(try runtime.record(id: "c1") == record)
        // A corrupt replacement is an error naming the file, not the old record.
        try Data("{not json".utf8).write(to: URL(fileURLWithPath: directory + "/c1/state.json.tmp"))
        rename(directory + "/c1/state.json.tmp", directory + "/c1/state.json")
        #expect(throws: RuntimeError.self) { _ = try runtime.record(id: "c1") }
        // A removed container is gone.
        try FileManager.default.removeItem(atPath: directory + "/c1")
        #expect(throws: RuntimeError.self) { _ = try runtime.record(id: "c1") }
        #expect(try read() == nil)
    }
}
