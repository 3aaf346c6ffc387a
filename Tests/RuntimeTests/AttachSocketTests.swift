import Foundation
import IotkubeTestSupport
import OCI
import Runtime
import Testing

/// The monitor's attach socket under a hostile or careless load: clients that vanish while
/// output flows, one that floods the stdin of a container that never reads it, more clients
/// than it serves; the monitor keeps serving and tells the last client of the exit.
@Suite(.ownThread, .enabled(if: RuntimeFixture.ready && toolAvailable("python3"), "needs root (namespaces, mounts, cgroups), busybox-static, gcc and python3"))
struct AttachSocketTests {
    static let client = #"""
        import os, socket, struct, sys, time
        directory = os.open(sys.argv[1], os.O_PATH | os.O_DIRECTORY)
        path = "/proc/self/fd/%d/attach" % directory

        def connect():
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(path)
            s.settimeout(10)
            return s

        def frames(s, want):
            # Frames until `want` is seen, the stream ends or 10 s pass; the kinds seen.
            data, kinds, deadline = b"", [], time.time() + 10
            while time.time() < deadline:
                try:
                    chunk = s.recv(65536)
                except socket.timeout:
                    break
                if not chunk:
                    kinds.append("end")
                    break
                data += chunk
                while len(data) >= 5:
                    kind, length = data[0:1].decode(), struct.unpack(">I", data[1:5])[0]
                    if len(data) < 5 + length:
                        break
                    kinds.append(kind)
                    data = data[5 + length:]
                if want in kinds:
                    break
            return kinds

        # Clients that vanish while output flows (abruptly, some before reading anything).
        for i in range(40):
            s = connect()
            if i % 2:
                frames(s, "1")
            s.close()
        # A flood of stdin for a container that never reads it, then the client goes.
        s = connect()
        s.setblocking(False)
        sent, frame = 0, b"i" + struct.pack(">I", 4096) + b"x" * 4096
        try:
            while sent < 4 << 20:
                sent += s.send(frame)
        except BlockingIOError:
            pass
        print("flooded", sent >= 65536)
        s.close()
        time.sleep(0.5)
        # More clients than served: the extra ones are refused at once, the others get output.
        held = [connect() for _ in range(10)]
        results = [frames(s, "1") for s in held]
        print("served", sum(1 for r in results if "1" in r), "refused", sum(1 for r in results if r == ["end"]))
        for s in held:
            s.close()
        # The last one sees output, then the exit.
        s = connect()
        print("output", "1" in frames(s, "1"))
        sys.stdout.flush()
        open(sys.argv[2], "w").write("ready")
        print("exit", frames(s, "end")[-2:])
        """#

    @Test func theMonitorServesAttachThroughVanishingFloodingAndTooManyClients() throws {
        let directory = NSTemporaryDirectory() + "attach-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try Self.client.write(toFile: directory + "/client.py", atomically: true, encoding: .utf8)
        // pid 1 of its namespace: ends on TERM only through its trap.
        let bundle = try RuntimeFixture.bundle(["sh", "-c", "trap 'exit 0' TERM; while :; do echo tick; sleep 0.02; done"])
        let root = RuntimeFixture.stateRoot()
        let runtime = BuiltinRuntime(root: root, helper: RuntimeFixture.agent)
        let _: ContainerRecord = try runtime.create(id: "attached", bundle: bundle, options: BuiltinRuntime.CreateOptions(logPath: bundle + "/out.log", stdin: .open, attach: true))
        defer { try? runtime.delete(id: "attached", force: true) }
        try runtime.start(id: "attached")
        let client = try BackgroundProcess("/usr/bin/python3", [directory + "/client.py", root + "/attached", directory + "/ready"], logPath: directory + "/client.log")
        for _ in 0..<600 where !FileManager.default.fileExists(atPath: directory + "/ready") { Thread.sleep(forTimeInterval: 0.1) }
        #expect(try runtime.state(id: "attached").status == .running, "the container (and its monitor) run on")
        try runtime.kill(id: "attached", signal: SIGTERM)
        for _ in 0..<100 where client.process.isRunning { Thread.sleep(forTimeInterval: 0.1) }
        let output = (try? String(contentsOfFile: directory + "/client.log", encoding: .utf8)) ?? ""
        #expect(output.contains("flooded True\n"), "\(output)")
        #expect(output.contains("served 8 refused 2\n"), "\(output)")
        #expect(output.contains("output True\n"), "\(output)")
        #expect(output.contains("exit ['x', 'end']\n"), "the exit frame, then the end: \(output)")
        #expect(runtime.exitRecord(id: "attached")?.exitCode == 0)
    }
}
