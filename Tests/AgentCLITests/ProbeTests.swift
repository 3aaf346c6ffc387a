import Foundation
@testable import Agent
import IotkubeTestSupport
import KubeModel
import NIOCore
import NIOPosix
import OCI
import Runtime
import Testing

/// Probe timing and thresholds, crash-loop back-off, and the network probe actions against
/// real servers.
@Suite(.ownThread) struct ProbeTests {
    @Test func backoffDoublesToFiveMinutesAndResetsAfterTenMinutesOfRunning() {
        var backoff = RestartBackoff()
        var now: Int64 = 1000
        var delays: [Int64] = []
        for _ in 0..<7 {
            delays.append(backoff.recordExit(started: now, exited: now + 1))
            now += 1 + backoff.delay
        }
        #expect(delays == [10, 20, 40, 80, 160, 300, 300])
        #expect(backoff.isBackingOff(at: now - 1) && !backoff.isBackingOff(at: now))
        #expect(backoff.message(container: "app", pod: "reader_edge(uid)") == "back-off 5m0s restarting failed container=app pod=reader_edge(uid)")
        let afterLongRun = backoff.recordExit(started: now, exited: now + 600)
        #expect(afterLongRun == 10, "ran 10 minutes: starts over")
    }

    @Test func thresholdsAndDefaults() {
        var probe = Probe()
        probe.initialDelaySeconds = 5
        probe.periodSeconds = 2
        probe.failureThreshold = 2
        probe.successThreshold = 3
        var liveness = ProbeTracker(probe, kind: .liveness)
        #expect(liveness.successThreshold == 1 && liveness.timeout == 1 && liveness.result == .unknown)
        #expect(liveness.initialDelay == 5 && liveness.period == 2)
        let firstChange = liveness.record(success: true)
        #expect(firstChange)
        let oneFailure = liveness.record(success: false, message: "connection refused")
        #expect(!oneFailure, "one failure is not enough")
        let twoFailures = liveness.record(success: false, message: "connection refused")
        #expect(twoFailures && liveness.result == .failure)
        #expect(liveness.lastFailure == "connection refused")
        var readiness = ProbeTracker(probe, kind: .readiness)
        #expect(readiness.result == .failure, "not ready until proven")
        readiness.record(success: true)
        readiness.record(success: true)
        #expect(readiness.result == .failure)
        let third = readiness.record(success: true)
        #expect(third && readiness.result == .success)
        let defaults = ProbeTracker(Probe(), kind: .startup)
        #expect(defaults.period == 10 && defaults.failureThreshold == 3 && defaults.initialDelay == 0)
    }

    @Test func namedPorts() throws {
        var container = Container(name: "app")
        container.ports = [ContainerPort(containerPort: 8080, name: "http")]
        #expect(try ProbeActions.port(.string("http"), in: container) == 8080)
        #expect(try ProbeActions.port(.int(9090), in: container) == 9090)
        #expect { _ = try ProbeActions.port(.string("metrics"), in: container) } throws: { "\($0)".contains("\"metrics\" names none of its ports") }
    }

    @Test(.enabled(if: toolAvailable("busybox") && toolAvailable("openssl"), "needs busybox and openssl"))
    func networkActionsAgainstRealServers() async throws {
        let directory = NSTemporaryDirectory() + "iotkube-probe-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory + "/www", withIntermediateDirectories: true)
        try "ok\n".write(toFile: directory + "/www/healthz", atomically: true, encoding: .utf8)
        let httpPort = try ServerProcess.freePort(), tlsPort = try ServerProcess.freePort(), silentPort = try ServerProcess.freePort()
        let http = try BackgroundProcess("/bin/busybox", ["httpd", "-f", "-p", "127.0.0.1:\(httpPort)", "-h", directory + "/www"], logPath: directory + "/httpd.log")
        defer { http.stop() }
        _ = try ServerProcess.run("/usr/bin/openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
                                                       "-subj", "/CN=probe", "-keyout", directory + "/key.pem", "-out", directory + "/cert.pem"])
        let tls = try BackgroundProcess("/usr/bin/openssl", ["s_server", "-accept", "127.0.0.1:\(tlsPort)", "-cert", directory + "/cert.pem", "-key", directory + "/key.pem", "-www", "-quiet"], logPath: directory + "/tls.log")
        defer { tls.stop() }
        // Listens and never answers (connections wait in the backlog).
        let silent = try BackgroundProcess("/usr/bin/python3", ["-c", "import socket,time\ns=socket.socket()\ns.bind(('127.0.0.1',\(silentPort)))\ns.listen(16)\ntime.sleep(600)"], logPath: directory + "/silent.log")
        defer { silent.stop() }
        for port in [httpPort, tlsPort, silentPort] {
            for _ in 0..<100 {
                if case .success = await ProbeActions.tcp(host: "127.0.0.1", port: port, timeoutSeconds: 5) { break }
                try await Task.sleep(for: .milliseconds(50))
            }
        }

        #expect(await ProbeActions.http(secure: false, host: "127.0.0.1", port: httpPort, path: "/healthz", headers: [HTTPHeader(name: "X-Probe", value: "1")], timeoutSeconds: 30) == .success)
        let missing = await ProbeActions.http(secure: false, host: "127.0.0.1", port: httpPort, path: "/nope", timeoutSeconds: 30)
        #expect(missing == .failure("HTTP probe failed with statuscode: 404"))
        #expect(await ProbeActions.http(secure: true, host: "127.0.0.1", port: tlsPort, path: "/", timeoutSeconds: 30) == .success, "HTTPS without verification")
        let hanging = await ProbeActions.http(secure: false, host: "127.0.0.1", port: silentPort, path: "/", timeoutSeconds: 1)
        guard case .failure(let message) = hanging else { Issue.record("a server that never answers passed"); return }
        #expect(message.contains("timeout after 1s"), "\(message)")
        let closed = try ServerProcess.freePort()
        guard case .failure(let refused) = await ProbeActions.tcp(host: "127.0.0.1", port: closed, timeoutSeconds: 1) else { Issue.record("closed port passed"); return }
        #expect(refused.contains("dial tcp 127.0.0.1:\(closed)"))
    }
}

/// gRPC probes against the official gRPC health service (Python grpcio + grpcio-health-checking).
@Suite(.ownThread) struct GRPCProbeTests {
    static let python = ServerProcess.findExecutable("python3") ?? "/usr/bin/python3"
    static var healthServerAvailable: Bool {
        (try? ServerProcess.run(python, ["-c", "import grpc, grpc_health.v1.health"]).status) == 0
    }

    static let server = """
        import sys, time
        from concurrent import futures
        import grpc
        from grpc_health.v1 import health, health_pb2, health_pb2_grpc
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        servicer = health.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
        server.add_insecure_port("127.0.0.1:" + sys.argv[1])
        servicer.set("", health_pb2.HealthCheckResponse.SERVING)
        servicer.set("ready", health_pb2.HealthCheckResponse.SERVING)
        servicer.set("down", health_pb2.HealthCheckResponse.NOT_SERVING)
        server.start()
        print("serving", flush=True)
        time.sleep(600)
        """

    @Test(.enabled(if: healthServerAvailable, "needs python3 with grpcio and grpcio-health-checking (packaging/install-deps.sh --test)"))
    func healthChecksAgainstTheOfficialServer() async throws {
        let directory = NSTemporaryDirectory() + "iotkube-grpc-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let port = try ServerProcess.freePort()
        let server = try BackgroundProcess(Self.python, ["-c", Self.server, String(port)], logPath: directory + "/server.log")
        defer { server.stop() }
        // A cold Python importing grpcio on a loaded 2-core CI machine takes tens of seconds:
        // wait for the server to say it serves (up to 3 minutes), then for its port.
        for _ in 0..<1800 {
            if (try? String(contentsOfFile: directory + "/server.log", encoding: .utf8))?.contains("serving") == true { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        for _ in 0..<200 {
            if case .success = await ProbeActions.tcp(host: "127.0.0.1", port: port, timeoutSeconds: 5) { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        // The first answer may wait for a cold server's threads: ask until it answers (as the
        // kubelet's probe loop would), for up to two minutes.
        var first = await GRPCHealthProbe.check(host: "127.0.0.1", port: port, service: "", timeoutSeconds: 10)
        for _ in 0..<24 where first != .success {
            try await Task.sleep(for: .seconds(5))
            first = await GRPCHealthProbe.check(host: "127.0.0.1", port: port, service: "", timeoutSeconds: 10)
        }
        #expect(first == .success, "server log: \((try? String(contentsOfFile: directory + "/server.log", encoding: .utf8)) ?? "")")
        #expect(await GRPCHealthProbe.check(host: "127.0.0.1", port: port, service: "ready", timeoutSeconds: 10) == .success)
        #expect(await GRPCHealthProbe.check(host: "127.0.0.1", port: port, service: "down", timeoutSeconds: 10)
            == .failure("service unhealthy (responded with \"NOT_SERVING\")"))
        // An unknown service: grpcio answers NOT_FOUND with an empty message.
        guard case .failure(let unknown) = await GRPCHealthProbe.check(host: "127.0.0.1", port: port, service: "nope", timeoutSeconds: 10) else {
            Issue.record("an unknown service passed"); return
        }
        #expect(unknown.contains("UNKNOWN") || unknown.contains("without a health status"), "\(unknown)")
        let closed = try ServerProcess.freePort()
        guard case .failure(let refused) = await GRPCHealthProbe.check(host: "127.0.0.1", port: closed, service: "", timeoutSeconds: 2) else {
            Issue.record("a closed port passed"); return
        }
        #expect(refused.contains("failed to connect"), "\(refused)")
    }

    @Test(.enabled(if: toolAvailable("busybox"), "needs busybox"))
    func anHTTP1ServerIsNotAHealthServer() async throws {
        let directory = NSTemporaryDirectory() + "iotkube-grpc-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let port = try ServerProcess.freePort()
        let http = try BackgroundProcess("/bin/busybox", ["httpd", "-f", "-p", "127.0.0.1:\(port)", "-h", directory], logPath: directory + "/httpd.log")
        defer { http.stop() }
        for _ in 0..<100 {
            if case .success = await ProbeActions.tcp(host: "127.0.0.1", port: port, timeoutSeconds: 5) { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        guard case .failure = await GRPCHealthProbe.check(host: "127.0.0.1", port: port, service: "", timeoutSeconds: 3) else {
            Issue.record("an HTTP/1 server passed a gRPC health check"); return
        }
    }

    @Test func requestFramingAndAnswers() {
        let request = GRPCHealthProbe.request(authority: "10.0.0.2:9000", service: "db")
        #expect(Array(request.prefix(24)) == Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8))
        // The DATA frame at the end: END_STREAM on stream 1, a 4-byte message "\n\u{2}db" behind the gRPC prefix.
        #expect(Array(request.suffix(18)) == [0, 0, 9, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 4, 0x0a, 2, 0x64, 0x62])
        #expect(GRPCHealthProbe.decode([0, 0, 0, 0, 2, 0x08, 1]) == .success)
        #expect(GRPCHealthProbe.decode([0, 0, 0, 0, 2, 0x08, 2]) == .failure("service unhealthy (responded with \"NOT_SERVING\")"))
        #expect(GRPCHealthProbe.decode([0, 0, 0, 0, 0]) == .failure("service unhealthy (responded with \"UNKNOWN\")"))
        #expect(GRPCHealthProbe.decode([0, 0, 0, 0, 2, 0x08]) == nil)
        #expect(GRPCHealthProbe.integer(1337, prefixBits: 5, pattern: 0) == [31, 154, 10])  // RFC 7541 C.1.2
    }

    /// A pod whose "health server" answers with an endless message (a 4 GiB length, then data
    /// past flow control) is cut off at 64 KiB, not read until the probe's timeout.
    @Test func aHealthServerThatFloodsTheProbeIsCutOff() async throws {
        let port = try ServerProcess.freePort()
        let script = """
            import socket, struct, sys
            s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(1)
            print("listening", flush=True)
            c, _ = s.accept()
            def frame(kind, stream, payload): return struct.pack(">I", len(payload))[1:] + bytes([kind, 0]) + struct.pack(">I", stream) + payload
            try:
                c.sendall(frame(4, 0, b""))
                c.sendall(frame(0, 1, b"\\x00\\xff\\xff\\xff\\xff" + b"x" * 16000))
                while True: c.sendall(frame(0, 1, b"x" * 16384))
            except Exception: pass
            """
        let log = NSTemporaryDirectory() + "iotkube-flood-\(UUID().uuidString.prefix(8)).log"
        let server = try SpawnedProcess(Self.python, ["-c", script, String(port)], output: .file(log))
        defer { server.terminate(); server.waitUntilExit(); try? FileManager.default.removeItem(atPath: log) }
        // It accepts one connection: wait for it to listen without connecting.
        for _ in 0..<600 where (try? String(contentsOfFile: log, encoding: .utf8))?.contains("listening") != true {
            try await Task.sleep(for: .milliseconds(100))
        }
        let outcome = await GRPCHealthProbe.check(host: "127.0.0.1", port: port, service: "", timeoutSeconds: 60)
        #expect(outcome == .failure("rpc error: the server sent more than a health answer (64 KiB)") || outcome == .failure("rpc error: a health answer of 4294967295 bytes"), "\(outcome)")
    }
}

/// exec probes run inside a real container.
@Suite(.ownThread, .enabled(if: getuid() == 0 && toolAvailable("busybox"), "needs root (namespaces) and busybox-static"))
struct ExecProbeTests {
    static func probedContainer(_ name: String) throws -> BuiltinRuntime {
        let base = ContainerFixture.base(name)
        let rootfs = base + "/rootfs"
        try ContainerFixture.busyboxRoot(at: rootfs, applets: ["sh", "cat", "sleep", "touch"])
        var spec = DefaultSpec.make(args: ["sh", "-c", "trap 'exit 0' TERM; touch /tmp/healthy; while :; do sleep 1; done"])
        spec.root = RuntimeSpec.Root(path: rootfs, readonly: false)
        spec.process?.env = ["PATH=/bin"]
        spec.linux?.cgroupsPath = "/iotkube-test/\(name)-\(UUID().uuidString)"
        let bundle = try ContainerFixture.bundle(spec, in: base)
        let runtime = BuiltinRuntime(root: base + "/state", helper: ContainerFixture.agent)
        let _: ContainerRecord = try runtime.create(id: "probed", bundle: bundle, options: BuiltinRuntime.CreateOptions(logPath: base + "/log"))
        try runtime.start(id: "probed")
        for _ in 0..<600 where !FileManager.default.fileExists(atPath: rootfs + "/tmp/healthy") { Thread.sleep(forTimeInterval: 0.05) }
        return runtime
    }

    @Test func execProbesPassFailAndTimeOut() async throws {
        let runtime = try Self.probedContainer("execprobe")
        defer { try? runtime.delete(id: "probed", force: true) }
        let user = RuntimeSpec.User()
        #expect(await ProbeActions.exec(runtime, id: "probed", command: ["cat", "/tmp/healthy"], env: ["PATH=/bin"], user: user, timeoutSeconds: 60) == .success)
        let failed = await ProbeActions.exec(runtime, id: "probed", command: ["cat", "/tmp/missing"], env: ["PATH=/bin"], user: user, timeoutSeconds: 60)
        #expect(failed == .failure("command [\"cat\", \"/tmp/missing\"] exited with 1: cat: can't open '/tmp/missing': No such file or directory"), "\(failed)")
        let slow = await ProbeActions.exec(runtime, id: "probed", command: ["sleep", "31"], env: ["PATH=/bin"], user: user, timeoutSeconds: 1)
        #expect(slow == .failure("command [\"sleep\", \"31\"] timed out after 1s"))
        #expect(try ServerProcess.run("/bin/sh", ["-c", "pgrep -x -f 'sleep 31' || true"]).output.isEmpty, "the overrunning command was killed")
    }

    /// A container's exec probes that hang (with a timeout of years) hold no thread the agent
    /// needs (NIO's pool starts containers: two of them held both of its threads on two cores),
    /// and stopping the probe ends the command at once.
    @Test func hangingExecProbesHoldNoSharedThreadAndStopAtOnce() async throws {
        let runtime = try Self.probedContainer("hangprobe")
        defer { try? runtime.delete(id: "probed", force: true) }
        let tries = (0..<(2 * System.coreCount + 1)).map { index in
            Task {
                await ProbeActions.exec(runtime, id: "probed", command: ["sleep", "\(3000 + index)"], env: ["PATH=/bin"], user: RuntimeSpec.User(),
                                        timeoutSeconds: 1 << 32)
            }
        }
        func running() throws -> Int {
            Int(try ServerProcess.run("/bin/sh", ["-c", "pgrep -f '^sleep 30[0-9][0-9]$' | wc -l"]).output.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
        }
        for _ in 0..<600 where try running() < tries.count { try await Task.sleep(for: .milliseconds(50)) }
        #expect(try running() == tries.count, "every probe's command runs")
        // The shared pool still runs work at once.
        let pooled = try await withThrowingTaskGroup(of: Bool.self) { group in
            group.addTask { try await NIOThreadPool.singleton.runIfActive { true } }
            group.addTask { try await Task.sleep(for: .seconds(20)); return false }
            defer { group.cancelAll() }
            return try await group.next() ?? false
        }
        #expect(pooled, "NIO's thread pool answered while the probes hang")
        for task in tries { task.cancel() }
        for task in tries {
            guard case .failure(let message) = await task.value else { Issue.record("a stopped probe passed"); continue }
            #expect(message.hasSuffix("was stopped"), "\(message)")
        }
        #expect(try running() == 0, "the stopped probes' commands are gone")
    }
}

/// Stopping real containers: preStop hooks, stop signals and the grace period.
@Suite(.ownThread, .enabled(if: getuid() == 0 && toolAvailable("busybox"), "needs root (namespaces) and busybox-static"))
struct ContainerStopperTests {
    static func start(_ script: String) throws -> (BuiltinRuntime, String, String) {
        let base = ContainerFixture.base("stop")
        let rootfs = base + "/rootfs"
        try ContainerFixture.busyboxRoot(at: rootfs, applets: ["sh", "sleep", "touch", "echo"])
        var spec = DefaultSpec.make(args: ["sh", "-c", "touch /tmp/up; " + script])
        spec.root = RuntimeSpec.Root(path: rootfs, readonly: false)
        spec.process?.env = ["PATH=/bin"]
        spec.linux?.cgroupsPath = "/iotkube-test/stop-\(UUID().uuidString)"
        let bundle = try ContainerFixture.bundle(spec, in: base)
        let runtime = BuiltinRuntime(root: base + "/state", helper: ContainerFixture.agent)
        let _: ContainerRecord = try runtime.create(id: "c", bundle: bundle, options: BuiltinRuntime.CreateOptions(logPath: base + "/log"))
        try runtime.start(id: "c")
        for _ in 0..<600 where !FileManager.default.fileExists(atPath: rootfs + "/tmp/up") { Thread.sleep(forTimeInterval: 0.05) }
        return (runtime, rootfs, base + "/log")
    }

    static let context = ContainerStopper.HookContext(env: ["PATH=/bin"], user: RuntimeSpec.User(), podIP: nil, container: Container(name: "c"))

    @Test func theStopSignalEndsAContainerThatHandlesIt() async throws {
        // STOPSIGNAL SIGUSR1 (the image's); the preStop hook runs first, inside the container.
        let (runtime, rootfs, log) = try Self.start("trap 'echo stopping; exit 0' USR1; while :; do sleep 0.2; done")
        defer { try? runtime.delete(id: "c", force: true) }
        var hook = LifecycleHandler()
        hook.exec = ExecAction(command: ["touch", "/tmp/prestop-ran"])
        let outcome = await ContainerStopper.stop(runtime, id: "c", stopSignal: "SIGUSR1", gracePeriodSeconds: 20, preStop: hook, context: Self.context)
        #expect(!outcome.killed && outcome.hookFailure == nil)
        #expect(FileManager.default.fileExists(atPath: rootfs + "/tmp/prestop-ran"))
        #expect(try String(contentsOfFile: log, encoding: .utf8).contains("stdout F stopping"))
        #expect(runtime.exitRecord(id: "c")?.exitCode == 0)
    }

    @Test func aContainerIgnoringTheSignalIsKilledAfterTheGracePeriod() async throws {
        let (runtime, _, _) = try Self.start("trap '' TERM; while :; do sleep 0.2; done")
        defer { try? runtime.delete(id: "c", force: true) }
        var hook = LifecycleHandler()
        hook.exec = ExecAction(command: ["sh", "-c", "exit 3"])
        // A grace period long enough for the hook under load, short enough to wait out.
        let outcome = await ContainerStopper.stop(runtime, id: "c", stopSignal: nil, gracePeriodSeconds: 8, preStop: hook, context: Self.context)
        #expect(outcome.killed)
        #expect(outcome.hookFailure == "command [\"sh\", \"-c\", \"exit 3\"] exited with 3", "\(String(describing: outcome.hookFailure))")
        #expect(runtime.exitRecord(id: "c")?.signal == SIGKILL)
    }

    @Test func signalNames() {
        #expect(ContainerStopper.signalNumber(nil) == SIGTERM && ContainerStopper.signalNumber("SIGQUIT") == SIGQUIT)
        #expect(ContainerStopper.signalNumber("usr2") == SIGUSR2 && ContainerStopper.signalNumber("9") == 9 && ContainerStopper.signalNumber("SIGRTMIN+3") == 37)
        // The image's STOPSIGNAL is outside input: an offset past the real-time signals used to trap.
        #expect(ContainerStopper.signalNumber("SIGRTMIN+2147483647") == SIGTERM && ContainerStopper.signalNumber("RTMIN+31") == SIGTERM)
    }
}
