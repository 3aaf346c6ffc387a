import Foundation
import IotkubeTestSupport
import OCI
import Runtime
import Testing

/// The OCI lifecycle through the CLI (create, start, state, kill, delete, exec, list), CRI logs,
/// and bundles that must be refused with a clear error and no state left behind.
@Suite(.ownThread, .enabled(if: RuntimeFixture.ready, "needs root (namespaces, mounts, cgroups), busybox-static and gcc"))
struct RuntimeLifecycleTests {
    @Test func createStartStateKillDelete() throws {
        let root = RuntimeFixture.stateRoot()
        // pid 1 of a namespace only gets signals it handles: the shell traps TERM.
        let bundle = try RuntimeFixture.bundle(["sh", "-c", "trap 'exit 143' TERM; sleep 300 & wait"]) { $0.hostname = "lifecycle" }
        let pidFile = bundle + "/container.pid"
        let log = bundle + "/container.log"
        let created = try RuntimeFixture.runtime(root, ["create", "--bundle", bundle, "--pid-file", pidFile, "--container-log", log, "life"])
        #expect(created.status == 0, "\(created.output)")
        var state = try RuntimeFixture.state(root, "life")
        #expect(state["status"] as? String == "created")
        let pid = try #require(state["pid"] as? Int)
        #expect(try String(contentsOfFile: pidFile, encoding: .utf8) == String(pid))
        #expect(kill(pid_t(pid), 0) == 0)
        // Created means set up but not running the command yet.
        #expect(try String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8) != "sh\n")
        let early = try RuntimeFixture.runtime(root, ["delete", "life"])
        #expect(early.status != 0 && early.output.contains("container life is created; stop it first or use --force"), "\(early.output)")

        #expect(try RuntimeFixture.runtime(root, ["start", "life"]).status == 0)
        state = try RuntimeFixture.state(root, "life")
        #expect(state["status"] as? String == "running")
        let list = try RuntimeFixture.runtime(root, ["list"])
        #expect(list.output.contains("life") && list.output.contains("running"))
        let again = try RuntimeFixture.runtime(root, ["start", "life"])
        #expect(again.status != 0 && again.output.contains("is running, not created"))

        let hostname = try RuntimeFixture.runtime(root, ["exec", "life", "--", "hostname"])
        #expect(hostname.status == 0 && hostname.output == "lifecycle\n", "\(hostname.output)")
        let failing = try RuntimeFixture.runtime(root, ["exec", "life", "--", "sh", "-c", "exit 5"])
        #expect(failing.status == 5)
        let sees = try RuntimeFixture.runtime(root, ["exec", "life", "--", "sh", "-c", "cat /proc/1/comm; grep NoNewPrivs /proc/self/status"])
        #expect(sees.output.hasPrefix("sh\n") && sees.output.contains("NoNewPrivs:\t1"), "\(sees.output)")

        #expect(try RuntimeFixture.runtime(root, ["kill", "life", "TERM"]).status == 0)
        var stopped = false
        for _ in 0..<100 where !stopped {
            stopped = (try? RuntimeFixture.state(root, "life"))?["status"] as? String == "stopped"
            if !stopped { Thread.sleep(forTimeInterval: 0.05) }
        }
        #expect(stopped)
        let exit = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: root + "/life/exit.json"))) as? [String: Any]
        #expect(exit?["exitCode"] as? Int == 143, "\(String(describing: exit))")
        let late = try RuntimeFixture.runtime(root, ["kill", "life", "KILL"])
        #expect(late.status != 0 && late.output.contains("container life is not running"))
        let execStopped = try RuntimeFixture.runtime(root, ["exec", "life", "--", "true"])
        #expect(execStopped.status != 0 && execStopped.output.contains("is not running"))
        #expect(try RuntimeFixture.runtime(root, ["delete", "life"]).status == 0)
        #expect(!FileManager.default.fileExists(atPath: root + "/life"))
        let gone = try RuntimeFixture.runtime(root, ["state", "life"])
        #expect(gone.status != 0 && gone.output.contains("container life does not exist"))
    }

    @Test func forceDeleteKillsARunningContainer() throws {
        let root = RuntimeFixture.stateRoot()
        let bundle = try RuntimeFixture.bundle(["sleep", "300"])
        #expect(try RuntimeFixture.runtime(root, ["create", "--bundle", bundle, "--container-log", "/dev/null", "forced"]).status == 0)
        #expect(try RuntimeFixture.runtime(root, ["start", "forced"]).status == 0)
        // A second container (its own cgroup) with the same profile reuses the compiled filter.
        let other = try RuntimeFixture.bundle(["sleep", "300"])
        #expect(try RuntimeFixture.runtime(root, ["create", "--bundle", other, "--container-log", "/dev/null", "second"]).status == 0)
        #expect(try FileManager.default.contentsOfDirectory(atPath: root + "/.seccomp").filter { $0.hasSuffix(".bpf") }.count == 1)
        #expect(try RuntimeFixture.runtime(root, ["delete", "--force", "second"]).status == 0)
        let pid = try #require(try RuntimeFixture.state(root, "forced")["pid"] as? Int)
        #expect(pid > 0)
        #expect(try RuntimeFixture.runtime(root, ["delete", "--force", "forced"]).status == 0)
        #expect(kill(pid_t(pid), 0) != 0)
        #expect(try RuntimeFixture.runtime(root, ["list", "-q"]).output.isEmpty)
    }

    @Test func terminalGoesToTheConsoleSocket() throws {
        let root = RuntimeFixture.stateRoot()
        let bundle = try RuntimeFixture.bundle(["sh", "-c", "tty; [ -t 0 ] && [ -t 1 ] && echo stdio-is-a-terminal; read line; echo got:$line"]) { spec in
            spec.process?.terminal = true
        }
        let socket = bundle + "/console.sock"
        let receiver = try BackgroundProcess("/usr/bin/python3", [RuntimeFixture.fixtures + "/console_receiver.py", socket, "typed-in\n"], logPath: bundle + "/console.log")
        for _ in 0..<200 where !receiver.log.contains("listening") { Thread.sleep(forTimeInterval: 0.05) }
        // Without a socket, a terminal is refused; a socket without a terminal too.
        let refused = try RuntimeFixture.runtime(root, ["create", "--bundle", bundle, "tty"])
        #expect(refused.status != 0 && refused.output.contains("process.terminal is true"), "\(refused.output)")
        #expect(try RuntimeFixture.runtime(root, ["create", "--bundle", bundle, "--console-socket", socket, "tty"]).status == 0)
        #expect(try RuntimeFixture.runtime(root, ["start", "tty"]).status == 0)
        for _ in 0..<200 where (try? RuntimeFixture.state(root, "tty"))?["status"] as? String != "stopped" { Thread.sleep(forTimeInterval: 0.05) }
        receiver.process.waitUntilExit()
        let printed = try String(contentsOfFile: bundle + "/console.log", encoding: .utf8)
        #expect(printed.contains("name=/dev/pts/0"), "\(printed)")
        #expect(printed.contains("/dev/pts/0\r\nstdio-is-a-terminal\r\n"), "\(printed)")
        #expect(printed.contains("got:typed-in"), "\(printed)")
        #expect(try RuntimeFixture.runtime(root, ["delete", "tty"]).status == 0)
        let plain = try RuntimeFixture.bundle(["true"])
        let unwanted = try RuntimeFixture.runtime(root, ["create", "--bundle", plain, "--console-socket", socket, "plain"])
        #expect(unwanted.status != 0 && unwanted.output.contains("process.terminal is false"), "\(unwanted.output)")
    }

    @Test func outputGoesToTheCRILog() throws {
        let root = RuntimeFixture.stateRoot()
        // 20,000 bytes without a newline: logged as a partial (P) record at the buffer size.
        let bundle = try RuntimeFixture.bundle(["sh", "-c", "echo hello; echo oops >&2; head -c 20000 /dev/zero | tr '\\0' x; echo; seq 1 2000"])
        let log = bundle + "/out.log"
        #expect(try RuntimeFixture.runtime(root, ["create", "--bundle", bundle, "--container-log", log, "logs"]).status == 0)
        #expect(try RuntimeFixture.runtime(root, ["start", "logs"]).status == 0)
        for _ in 0..<200 where (try? RuntimeFixture.state(root, "logs"))?["status"] as? String != "stopped" { Thread.sleep(forTimeInterval: 0.05) }
        let lines = try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n")
        let pattern = try Regex(#"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z (stdout|stderr) [FP] "#)
        #expect(lines.allSatisfy { $0.firstMatch(of: pattern) != nil })
        #expect(lines.contains { $0.hasSuffix(" stdout F hello") })
        #expect(lines.contains { $0.hasSuffix(" stderr F oops") })
        #expect(lines.contains { $0.contains(" stdout P xxxx") })
        #expect(lines.contains { $0.hasSuffix(" stdout F 2000") })
        #expect(lines.filter { $0.contains(" stdout F ") }.count >= 2001)
        #expect(try RuntimeFixture.runtime(root, ["delete", "logs"]).status == 0)
    }

    @Test(arguments: [
        ("missing rootfs", "root.path: /nonexistent-rootfs is not a directory"),
        ("ociVersion 2.0.0", #"ociVersion "2.0.0" is not supported (1.0.x to 1.3.x)"#),
        ("user namespace", "user namespaces are not supported yet"),
        ("relative cwd", #"process.cwd: "tmp" is not an absolute path"#),
        ("unknown capability", #"process.capabilities.bounding: unknown capability "CAP_FLY""#),
        ("host sysctl", "linux.sysctl: kernel.panic is not namespaced"),
        ("terminal", "process.terminal is true: the terminal's master needs a --console-socket"),
        ("bad seccomp action", #"unsupported seccomp action "SCMP_ACT_MAYBE""#),
    ])
    func badBundlesAreRefused(_ problem: String, _ message: String) throws {
        let bundle = try RuntimeFixture.bundle(["true"]) { spec in
            switch problem {
            case "missing rootfs": spec.root = RuntimeSpec.Root(path: "/nonexistent-rootfs")
            case "ociVersion 2.0.0": spec.ociVersion = "2.0.0"
            case "user namespace": spec.linux?.namespaces?.append(.init(type: "user"))
            case "relative cwd": spec.process?.cwd = "tmp"
            case "unknown capability": spec.process?.capabilities?.bounding?.append("CAP_FLY")
            case "host sysctl": spec.linux?.sysctl = ["kernel.panic": "1"]
            case "terminal": spec.process?.terminal = true
            default: spec.linux?.seccomp?.defaultAction = "SCMP_ACT_MAYBE"
            }
        }
        let root = RuntimeFixture.stateRoot()
        let result = try RuntimeFixture.runtime(root, ["create", "--bundle", bundle, "bad"])
        #expect(result.status != 0)
        #expect(result.output.contains(message), "\(result.output)")
        // Nothing of the container; a compiled filter may stay in the shared cache.
        #expect((try? FileManager.default.contentsOfDirectory(atPath: root))?.filter { !$0.hasPrefix(".") }.isEmpty ?? true, "no state left")
    }

    /// "stopped" promises the exit record: a child the container leaves behind (no pid namespace
    /// of its own, so it outlives the main process) holds the output pipe open after the reap,
    /// once for a moment and once for good, and the state must not say stopped before the exit
    /// is recorded, which must happen soon even while the child keeps writing.
    @Test(arguments: [("(sleep 1.5; echo late) & exit 7", Int32(7)), ("(while :; do echo x; sleep 0.1; done) & exit 3", Int32(3))])
    func aStoppedContainerAlwaysHasItsExitRecorded(_ script: String, _ code: Int32) throws {
        let bundle = try RuntimeFixture.bundle(["sh", "-c", script]) { spec in
            spec.linux?.namespaces?.removeAll { $0.type == "pid" }
        }
        let runtime = BuiltinRuntime(root: RuntimeFixture.stateRoot(), helper: RuntimeFixture.agent)
        let _: ContainerRecord = try runtime.create(id: "left", bundle: bundle, options: BuiltinRuntime.CreateOptions(logPath: bundle + "/out.log"))
        defer { try? runtime.delete(id: "left", force: true) }
        try runtime.start(id: "left")
        var status = try runtime.state(id: "left").status
        for _ in 0..<3000 where status != .stopped {
            Thread.sleep(forTimeInterval: 0.01)
            status = try runtime.state(id: "left").status
        }
        #expect(status == .stopped, "the exit was never recorded")
        #expect(runtime.exitRecord(id: "left")?.exitCode == code)
    }

    /// In the moment between the reap and the exit record the run reads as running, but its pid
    /// is free. A host process that takes the number (placed there through ns_last_pid, as a
    /// container burning pids could arrange) is never signalled, killed or joined in its place.
    @Test func aFreedPidIsNeitherSignalledNorJoined() throws {
        // The child keeps writing, so the exit is recorded only after the bounded drain (3 s).
        let bundle = try RuntimeFixture.bundle(["sh", "-c", "(while :; do echo x; sleep 0.1; done) & exit 0"]) { spec in
            spec.linux?.namespaces?.removeAll { $0.type == "pid" }
        }
        let runtime = BuiltinRuntime(root: RuntimeFixture.stateRoot(), helper: RuntimeFixture.agent)
        let record: ContainerRecord = try runtime.create(id: "freed", bundle: bundle, options: BuiltinRuntime.CreateOptions(logPath: bundle + "/out.log"))
        defer { try? runtime.delete(id: "freed", force: true) }
        try runtime.start(id: "freed")
        let pid = record.pid
        for _ in 0..<1000 where kill(pid, 0) == 0 { usleep(2000) }
        var squatter: SpawnedProcess?
        for _ in 0..<50 where squatter == nil {
            try String(pid - 1).write(toFile: "/proc/sys/kernel/ns_last_pid", atomically: false, encoding: .utf8)
            let candidate = try SpawnedProcess("/bin/sleep", ["60"])
            if candidate.processIdentifier == pid { squatter = candidate } else { candidate.signal(SIGKILL); candidate.waitUntilExit() }
        }
        guard let squatter else {
            print("aFreedPidIsNeitherSignalledNorJoined: pid \(pid) could not be taken (other processes were faster); the attack was not made")
            return
        }
        defer { squatter.signal(SIGKILL); squatter.waitUntilExit() }
        guard try runtime.state(id: "freed").status == .running else {
            print("aFreedPidIsNeitherSignalledNorJoined: the exit was recorded before pid \(pid) was taken; the attack was not made")
            return
        }
        #expect(throws: RuntimeError.self) { try runtime.kill(id: "freed", signal: SIGKILL) }
        #expect(throws: RuntimeError.self) {
            _ = try runtime.execCapturing(id: "freed", process: RuntimeSpec.Process(args: ["/bin/true"], user: RuntimeSpec.User()), timeoutSeconds: 5)
        }
        #expect(try runtime.state(id: "freed").pid == 0, "the state names no pid that is not the container's")
        try? runtime.delete(id: "freed", force: true)
        #expect(squatter.isRunning, "the process that took the number lives")
    }

    @Test func unreadableConfig() throws {
        let bundle = NSTemporaryDirectory() + "iotkube-bundle-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: bundle, withIntermediateDirectories: true)
        try "{\"ociVersion\": \"1.0.2\", \"process\": ".write(toFile: bundle + "/config.json", atomically: true, encoding: .utf8)
        let result = try RuntimeFixture.runtime(RuntimeFixture.stateRoot(), ["create", "--bundle", bundle, "broken"])
        #expect(result.status != 0 && result.output.contains("\(bundle)/config.json"), "\(result.output)")
        let missing = try RuntimeFixture.runtime(RuntimeFixture.stateRoot(), ["create", "--bundle", bundle + "/nope", "broken"])
        #expect(missing.status != 0 && missing.output.contains("config.json does not exist"), "\(missing.output)")
        let badID = try RuntimeFixture.runtime(RuntimeFixture.stateRoot(), ["create", "--bundle", bundle, "../escape"])
        #expect(badID.status != 0 && badID.output.contains("container id \"../escape\" must be"))
    }
}

/// The same lifecycle through an external OCI runtime (crun) behind the agent's runtime interface.
@Suite(.ownThread, .enabled(if: RuntimeFixture.ready && toolAvailable("crun"), "needs root, busybox-static, gcc and crun"))
struct ExternalRuntimeTests {
    @Test func crunBackendRunsTheSameBundle() throws {
        let bundle = try RuntimeFixture.bundle(["sh", "-c", "echo from-crun $(hostname); sleep 300"]) { spec in
            spec.ociVersion = "1.0.2"   // crun 1.8 knows up to 1.0.x/1.1.x
            spec.hostname = "via-crun"
            spec.linux?.cgroupsPath = nil
        }
        let root = RuntimeFixture.stateRoot()
        let log = bundle + "/out.log"
        // crun 1.8 refuses hybrid cgroups: hide the near-empty v2 mount, run without its cgroup manager.
        let script = """
            mount -t tmpfs -o size=1m none /sys/fs/cgroup/unified 2>/dev/null
            agent=$1; root=$2; bundle=$3; log=$4
            r() { "$agent" runtime --root "$root" --backend "$(command -v crun)" --backend-arg=--cgroup-manager=disabled "$@"; }
            r create --bundle "$bundle" --container-log "$log" ext || exit 10
            r state ext | grep -q '"status": "created"' || { r state ext; exit 11; }
            r start ext || exit 12
            sleep 0.5
            r state ext | grep -q '"status": "running"' || { r state ext; exit 13; }
            r kill ext KILL || exit 14
            sleep 0.5
            r state ext | grep -q '"status": "stopped"' || { r state ext; exit 15; }
            r delete ext || exit 16
            r state ext 2>&1 | grep -q "ext" || exit 17
            exit 0
            """
        let result = try ServerProcess.run("/usr/bin/unshare", ["-m", "--propagation", "private", "/bin/sh", "-c", script, "sh",
                                                                 RuntimeFixture.agent, root, bundle, log])
        #expect(result.status == 0, "\(result.output)")
        #expect(try String(contentsOfFile: log, encoding: .utf8).contains("from-crun via-crun"))
    }
}

/// Container output in a real systemd-journald (started in a private mount namespace).
@Suite(.ownThread, .enabled(if: RuntimeFixture.ready && FileManager.default.isExecutableFile(atPath: "/lib/systemd/systemd-journald"),
                "needs root, busybox-static, gcc and systemd-journald"))
struct ContainerJournalTests {
    @Test func outputLinesReachJournaldWithTheContainerID() throws {
        let bundle = try RuntimeFixture.bundle(["sh", "-c", "echo journal-out; echo journal-err >&2"])
        let root = RuntimeFixture.stateRoot()
        let script = """
            set -e
            for d in /run/systemd/journal /run/log/journal /var/log/journal; do mkdir -p "$d"; mount -t tmpfs -o mode=0755,size=16m none "$d"; done
            /lib/systemd/systemd-journald > /dev/null 2>&1 &
            journal=$!
            for i in $(seq 1 300); do [ -S /run/systemd/journal/socket ] && break; sleep 0.01; done
            [ -S /run/systemd/journal/socket ] || { echo "journald did not start"; exit 1; }
            "$1" runtime --root "$2" create --bundle "$3" --container-log "$3/out.log" --journal jtest
            "$1" runtime --root "$2" start jtest
            for i in $(seq 1 200); do "$1" runtime --root "$2" state jtest | grep -q '"status": "stopped"' && break; sleep 0.02; done
            journalctl --sync 2>/dev/null || true
            journalctl --no-pager -o json CONTAINER_ID=jtest
            "$1" runtime --root "$2" delete jtest
            kill $journal
            """
        let result = try ServerProcess.run("/usr/bin/unshare", ["--mount", "--propagation", "private", "--", "bash", "-c", script, "sh",
                                                                 RuntimeFixture.agent, root, bundle])
        let records = result.output.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        let out = records.first { $0["MESSAGE"] as? String == "journal-out" }
        let err = records.first { $0["MESSAGE"] as? String == "journal-err" }
        #expect(out?["PRIORITY"] as? String == "6" && out?["CONTAINER_STREAM"] as? String == "stdout", "\(result.output)")
        #expect(err?["PRIORITY"] as? String == "3" && err?["SYSLOG_IDENTIFIER"] as? String == "jtest", "\(result.output)")
        #expect(try String(contentsOfFile: bundle + "/out.log", encoding: .utf8).contains(" stdout F journal-out"))
    }
}
