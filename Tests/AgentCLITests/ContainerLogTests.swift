import Foundation
import IotkubeTestSupport
import KubeModel
import Synchronization
import Testing

@testable import Agent

/// The CRI log files as `kubectl logs` reads them, and their rotation.
@Suite(.ownThread) struct ContainerLogTests {
    static func folder() throws -> String {
        let base = NSTemporaryDirectory() + "iotkube-logs-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: base + "/edge_meter_uid-1/app", withIntermediateDirectories: true)
        return base
    }

    @Test func partialLinesJoinTailsAndTimestamps() throws {
        let base = try Self.folder()
        defer { try? FileManager.default.removeItem(atPath: base) }
        let log = """
            2026-11-24T00:00:01.000000001Z stdout F first
            2026-11-24T00:00:02.000000002Z stdout P sec
            2026-11-24T00:00:02.500000000Z stdout F ond
            2026-11-24T00:00:03.000000003Z stderr F 
            2026-11-24T00:00:04.000000004Z stdout F fourth with  spaces
            2026-11-24T00:00:05.000000005Z stdout P unfinish
            """
        try (log + "\n").write(toFile: base + "/edge_meter_uid-1/app/0.log", atomically: true, encoding: .utf8)
        try "2026-11-24T00:00:00Z stdout F old run\n".write(toFile: base + "/edge_meter_uid-1/app/1.log", atomically: false, encoding: .utf8)
        try FileManager.default.moveItem(atPath: base + "/edge_meter_uid-1/app/1.log", toPath: base + "/edge_meter_uid-1/app/1.log.tmp")
        let reader = ContainerLogReader(directory: base)
        var request = ContainerLogReader.Request(namespace: "edge", pod: "meter", container: "app")
        let file = try reader.file(for: request)
        #expect(file.hasSuffix("/app/0.log"))
        // The unfinished partial line waits for its end.
        #expect(String(decoding: reader.read(request, file: file), as: UTF8.self) == "first\nsecond\n\nfourth with  spaces\n")
        request.tailLines = 2
        request.timestamps = true
        #expect(String(decoding: reader.read(request, file: file), as: UTF8.self)
            == "2026-11-24T00:00:03.000000003Z \n2026-11-24T00:00:04.000000004Z fourth with  spaces\n")
        request.tailLines = nil
        request.timestamps = false
        request.limitBytes = 8
        #expect(String(decoding: reader.read(request, file: file), as: UTF8.self) == "first\nse")
        request.previous = true
        #expect(throws: ContainerLogReader.LogError.self) { try reader.file(for: request) }
        #expect(throws: ContainerLogReader.LogError.self) { try reader.file(for: ContainerLogReader.Request(namespace: "edge", pod: "other", container: "app")) }
        #expect(throws: ContainerLogReader.LogError.self) {
            try ContainerLogReader.Request(namespace: "edge", pod: "meter", container: "app", query: ["tailLines": "-3"])
        }
    }

    /// A pod that can write the log folder (a hostPath over /var/log) swaps its live log for a
    /// link to a host file: rotation neither copies nor truncates what the link names.
    @Test func rotationDoesNotFollowALinkInTheLogFolder() throws {
        let base = try Self.folder()
        defer { try? FileManager.default.removeItem(atPath: base) }
        let folder = base + "/edge_meter_uid-1/app"
        let host = base + "/host-file"
        try String(repeating: "host data\n", count: 1000).write(toFile: host, atomically: true, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: folder + "/0.log", withDestinationPath: host)
        #expect(try !ContainerLogRotation(maxBytes: 4096, maxFiles: 3).rotateIfNeeded(folder + "/0.log"))
        #expect(try String(contentsOfFile: host, encoding: .utf8).count == 10_000, "the host file is untouched")
    }

    @Test func previousRunAndRotation() throws {
        let base = try Self.folder()
        defer { try? FileManager.default.removeItem(atPath: base) }
        let folder = base + "/edge_meter_uid-1/app"
        try "2026-11-24T00:00:00Z stdout F run zero\n".write(toFile: folder + "/0.log", atomically: true, encoding: .utf8)
        let line = "2026-11-24T00:00:01Z stdout F " + String(repeating: "x", count: 100) + "\n"
        try String(repeating: line, count: 60).write(toFile: folder + "/1.log", atomically: true, encoding: .utf8)
        let reader = ContainerLogReader(directory: base)
        var request = ContainerLogReader.Request(namespace: "edge", pod: "meter", container: "app")
        request.previous = true
        #expect(String(decoding: reader.read(request, file: try reader.file(for: request)), as: UTF8.self) == "run zero\n")

        let rotation = ContainerLogRotation(maxBytes: 4096, maxFiles: 3)
        #expect(try !rotation.rotateIfNeeded(folder + "/0.log"))
        for minute in 0..<4 {
            try String(repeating: line, count: 60).write(toFile: folder + "/1.log", atomically: true, encoding: .utf8)
            #expect(try rotation.rotateIfNeeded(folder + "/1.log", now: Timestamp(seconds: 1_795_000_000 + Int64(minute) * 60)))
            #expect(try FileManager.default.attributesOfItem(atPath: folder + "/1.log")[.size] as? Int == 0)
        }
        let rotated = try FileManager.default.contentsOfDirectory(atPath: folder).filter { $0.hasPrefix("1.log.") }.sorted()
        #expect(rotated.count == 2, "\(rotated)")
        #expect(rotated.last == "1.log." + ContainerLogRotation.stamp(Timestamp(seconds: 1_795_000_180)))
        #expect(try String(contentsOfFile: folder + "/" + rotated[0], encoding: .utf8).count == 60 * line.count)

        // The wall clock goes a year back: the newest rotation is still the one kept last.
        for round in 0..<3 {
            try ("newest \(round)\n" + String(repeating: line, count: 60)).write(toFile: folder + "/1.log", atomically: true, encoding: .utf8)
            #expect(try rotation.rotateIfNeeded(folder + "/1.log", now: Timestamp(seconds: 1_795_000_000 - 366 * 86_400 + Int64(round))))
            let kept = try FileManager.default.contentsOfDirectory(atPath: folder).filter { $0.hasPrefix("1.log.") }.sorted()
            #expect(kept.count == 2, "\(kept)")
            #expect(try String(contentsOfFile: folder + "/" + (kept.last ?? ""), encoding: .utf8).hasPrefix("newest \(round)\n"), "\(kept)")
        }
    }

    @Test func followReadsOnAfterTheFileIsRotated() async throws {
        let base = try Self.folder()
        defer { try? FileManager.default.removeItem(atPath: base) }
        let file = base + "/edge_meter_uid-1/app/0.log"
        let line = "2026-11-24T00:00:01Z stdout F " + String(repeating: "x", count: 100) + "\n"
        try (String(repeating: line, count: 50) + "2026-11-24T00:00:02Z stdout F before\n").write(toFile: file, atomically: true, encoding: .utf8)
        let reader = ContainerLogReader(directory: base)
        var request = ContainerLogReader.Request(namespace: "edge", pod: "meter", container: "app")
        request.tailLines = 1
        let received = Mutex<String>("")
        let following = Task {
            try await reader.follow(request, file: file) { bytes in received.withLock { $0 += String(decoding: bytes, as: UTF8.self) } }
        }
        defer { following.cancel() }
        // Up to 30 s: on a loaded machine the follow's first read can take seconds.
        for _ in 0..<300 where !received.withLock({ $0.contains("before") }) { try await Task.sleep(for: .milliseconds(100)) }
        try #require(received.withLock { $0 } == "before\n", "the follow did not read the tail before the rotation")
        // Rotation (copy + truncate), then the container writes on into the emptied file.
        #expect(try ContainerLogRotation(maxBytes: 1024, maxFiles: 2).rotateIfNeeded(file))
        let handle = try #require(FileHandle(forWritingAtPath: file))
        handle.seekToEndOfFile()
        handle.write(Data("2026-11-24T00:00:03Z stdout F after\n".utf8))
        try handle.close()
        for _ in 0..<300 where !received.withLock({ $0.contains("after") }) { try await Task.sleep(for: .milliseconds(100)) }
        #expect(received.withLock { $0 } == "before\nafter\n")
    }
}
