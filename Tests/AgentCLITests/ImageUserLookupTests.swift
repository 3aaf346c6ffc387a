import Foundation
import IotkubeTestSupport
import Agent
import KubeModel
import OCI
import Testing

/// The image's user and groups come from its own /etc/passwd and /etc/group, read inside the
/// root file system: an image cannot hang the agent with a FIFO there nor make it read the
/// host's files through an absolute symlink.
@Suite(.ownThread) struct ImageUserLookupTests {
    /// A root file system with /etc and the given passwd entry (a closure creating it).
    static func rootfs(_ plant: (String) throws -> Void) throws -> String {
        let root = NSTemporaryDirectory() + "iotkube-userroot-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: root + "/etc", withIntermediateDirectories: true)
        try "root:x:0:\n".write(toFile: root + "/etc/group", atomically: true, encoding: .utf8)
        try plant(root)
        return root
    }

    static func user(_ imageUser: String, rootfs: String) throws -> RuntimeSpec.User? {
        let container = Container(name: "app", image: "hostile")
        var pod = Pod(metadata: ObjectMeta(name: "hostile", namespace: "edge"), spec: PodSpec(containers: [container]))
        pod.metadata.uid = "uid-hostile"
        let process = ContainerProcess(args: ["/bin/app"], env: [], workingDirectory: "/", warnings: [])
        return try ContainerSpecBuilder.build(ContainerSpecBuilder.Input(
            pod: pod, container: container, process: process, imageUser: imageUser, rootfs: rootfs, sandbox: nil,
            cgroupsPath: "iotkube/hostile", seccompProfileRoot: rootfs, nodeMemoryCapacity: 1 << 30)).process?.user
    }

    /// Runs the lookup on its own thread; gives up after `seconds` (then unblocks a reader
    /// stuck on the FIFO so the thread ends) and reports nil.
    static func lookupWithin(_ seconds: Double, imageUser: String, rootfs: String, fifo: String) -> Result<RuntimeSpec.User?, any Error>? {
        let done = DispatchSemaphore(value: 0)
        let outcome = LockedBox<Result<RuntimeSpec.User?, any Error>?>(nil)
        Thread.detachNewThread {
            outcome.set(Result { try user(imageUser, rootfs: rootfs) })
            done.signal()
        }
        guard done.wait(timeout: .now() + seconds) == .success else {
            let writer = open(fifo, O_WRONLY | O_NONBLOCK)
            if writer >= 0 { close(writer) }
            _ = done.wait(timeout: .now() + 5)
            return nil
        }
        return outcome.get()
    }

    @Test func aFIFOAsPasswdIsRefusedWithoutBlocking() throws {
        let root = try Self.rootfs { try #require(mkfifo($0 + "/etc/passwd", 0o644) == 0) }
        defer { try? FileManager.default.removeItem(atPath: root) }
        let started = Date()
        let outcome = try #require(Self.lookupWithin(5, imageUser: "app", rootfs: root, fifo: root + "/etc/passwd"),
                                   "the lookup blocked on the image's FIFO")
        #expect(Date().timeIntervalSince(started) < 2)
        #expect { try outcome.get() } throws: { "\($0)" == "container app: the image's /etc/passwd is not a regular file" }
    }

    @Test func anAbsoluteSymlinkResolvesInsideTheImage() throws {
        // A host file with a user that only the host has; the image links its passwd to it.
        let hostFile = NSTemporaryDirectory() + "iotkube-hostpasswd-\(UUID().uuidString)"
        try "hostonly:x:4321:4321::/root:/bin/sh\n".write(toFile: hostFile, atomically: true, encoding: .utf8)
        defer { unlink(hostFile) }
        let root = try Self.rootfs { try FileManager.default.createSymbolicLink(atPath: $0 + "/etc/passwd", withDestinationPath: hostFile) }
        defer { try? FileManager.default.removeItem(atPath: root) }
        #expect { _ = try Self.user("hostonly", rootfs: root) } throws: {
            "\($0)" == "container app: the image's user \"hostonly\" is not in its /etc/passwd"
        }
        // The same link text names the image's own file once the image holds one.
        try FileManager.default.createDirectory(atPath: root + (hostFile as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try "inimage:x:1234:1234::/:/bin/sh\n".write(toFile: root + hostFile, atomically: true, encoding: .utf8)
        #expect(try Self.user("inimage", rootfs: root)?.uid == 1234)
        #expect { _ = try Self.user("hostonly", rootfs: root) } throws: { _ in true }
    }

    @Test func anOversizedPasswdIsRefused() throws {
        let root = try Self.rootfs { try Data(count: (1 << 20) + 1).write(to: URL(fileURLWithPath: $0 + "/etc/passwd")) }
        defer { try? FileManager.default.removeItem(atPath: root) }
        #expect { _ = try Self.user("app", rootfs: root) } throws: {
            "\($0)" == "container app: the image's /etc/passwd is larger than 1048576 bytes"
        }
    }
}

/// A value shared with a detached thread.
final class LockedBox<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value
    init(_ value: Value) { self.value = value }
    func set(_ newValue: Value) { lock.lock(); value = newValue; lock.unlock() }
    func get() -> Value { lock.lock(); defer { lock.unlock() }; return value }
}
