#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif
import CRuntime
import KubeCoding
import OCI
import SystemSupport

/// The built-in OCI runtime: containers from bundles, set up by the C monitor the agent binary
/// turns into (namespaces, mounts, pivot_root, capabilities, seccomp), placed in cgroups, with
/// state under `root/<id>/`. The CLI verbs (`iotkube-agent runtime …`) and the pod code use it.
public struct BuiltinRuntime: Sendable {
    public let root: String
    /// The binary holding the C helpers (the agent itself).
    public let helper: String
    public let cgroups: any CgroupManager
    /// Parent of containers' cgroups when a spec gives no (or a relative) `cgroupsPath`.
    public let cgroupParent: String

    /// An OCI runtime (crun, runc) that makes and starts the containers instead of this one's
    /// own setup; the monitor, logs, attach, exec, state and exit records stay this runtime's.
    public let backend: ExternalBackend?
    /// Records already decoded (shared by copies of this runtime).
    let records = ContainerRecordCache()

    public init(root: String = "/run/iotkube/runtime", helper: String? = nil, cgroups: (any CgroupManager)? = nil, cgroupParent: String = "iotkube",
                backend: ExternalBackend? = nil) {
        self.root = root
        self.helper = helper ?? ProcessSpawner.currentExecutable()
        self.cgroups = cgroups ?? CgroupDetection.detect()
        self.cgroupParent = cgroupParent
        self.backend = backend
    }

    /// Options of `create`.
    public struct CreateOptions: Sendable {
        /// Also write the container's pid here (`--pid-file`).
        public var pidFile: String?
        /// Write the container's stdout/stderr to this CRI-format log instead of inheriting ours.
        public var logPath: String?
        /// Also send each output line to journald (when it runs) with this SYSLOG_IDENTIFIER and
        /// CONTAINER_ID (needs `logPath`).
        public var journalIdentifier: String?
        /// For `process.terminal`: the AF_UNIX socket that receives the pseudo-terminal's master
        /// (SCM_RIGHTS), as with runc and crun; the container's stdio is then the terminal.
        public var consoleSocket: String?
        /// The container's stdin (with `logPath`): none (/dev/null), a pipe attached clients
        /// write to, or one closed once the first attached session that used it ends.
        public var stdin: Stdin
        /// Serve attach clients on `<state>/attach` (with `logPath`): the output as it comes,
        /// and stdin (the agent's `kubectl attach`).
        public var attach: Bool

        public enum Stdin: Int, Sendable { case none = 0, open = 1, once = 2 }

        public init(pidFile: String? = nil, logPath: String? = nil, journalIdentifier: String? = nil, consoleSocket: String? = nil,
                    stdin: Stdin = .none, attach: Bool = false) {
            self.pidFile = pidFile
            self.logPath = logPath
            self.journalIdentifier = journalIdentifier
            self.consoleSocket = consoleSocket
            self.stdin = stdin
            self.attach = attach
        }
    }

    func directory(_ id: String) -> String { "\(root)/\(id)" }

    /// The container's state directory: its record, and its exit record once the process ended.
    public func stateDirectory(id: String) -> String { directory(id) }

    static func validate(id: String) throws(RuntimeError) {
        let bytes = Array(id.utf8)
        func allowed(_ c: UInt8) -> Bool { (0x30...0x39).contains(c) || (0x41...0x5A).contains(c) || (0x61...0x7A).contains(c) || c == 0x5F || c == 0x2E || c == 0x2D }
        guard let first = bytes.first, first != 0x2E, first != 0x2D, bytes.count <= 128, bytes.allSatisfy(allowed) else {
            throw RuntimeError("container id \"\(id)\" must be 1-128 of [A-Za-z0-9_.-], not starting with '.' or '-'")
        }
    }

    /// Reads and checks `<bundle>/config.json`.
    public static func loadSpec(bundle: String) throws(RuntimeError) -> RuntimeSpec {
        let path = "\(bundle)/config.json"
        let bytes: [UInt8]
        do {
            guard let read = try AtomicFile.read(path) else { throw RuntimeError("\(path) does not exist") }
            bytes = read
        } catch let error as RuntimeError { throw error } catch { throw RuntimeError("\(path): \(error)") }
        let spec: RuntimeSpec
        do { spec = try KubeJSON.decode(RuntimeSpec.self, from: bytes, validation: .discard) } catch {
            throw RuntimeError("\(path): \(error)")
        }
        let parts = spec.ociVersion.split(separator: ".")
        guard parts.count >= 2, parts[0] == "1", let minor = Int(parts[1]), (0...3).contains(minor) else {
            throw RuntimeError("\(path): ociVersion \"\(spec.ociVersion)\" is not supported (1.0.x to 1.3.x)")
        }
        try OCIHooks.validate(spec.hooks, in: path)
        return spec
    }

    // MARK: create / run

    /// Creates the container: everything set up, the process waiting for `start`.
    @discardableResult
    public func create(id: String, bundle: String, options: CreateOptions = CreateOptions()) throws(RuntimeError) -> ContainerRecord {
        try launch(id: id, bundle: bundle, options: options, inheritStdio: options.logPath == nil).record
    }

    /// create + start + wait: the container's exit code (`runtime run`).
    public func run(id: String, bundle: String) throws(RuntimeError) -> Int32 {
        let launched = try launch(id: id, bundle: bundle, options: CreateOptions(), inheritStdio: true)
        try start(id: id)
        while let line = launched.reports.line() {
            if line.hasPrefix("exited ") { return Int32(line.dropFirst(7)) ?? 1 }
        }
        return exitRecord(id: id)?.exitCode ?? 1
    }

    private func launch(id: String, bundle rawBundle: String, options: CreateOptions, inheritStdio: Bool) throws(RuntimeError) -> (record: ContainerRecord, reports: ReportReader) {
        try Self.validate(id: id)
        let bundle = Self.absolute(rawBundle)
        let spec = try Self.loadSpec(bundle: bundle)
        let state = directory(id)
        do { try FileTree.makeDirectories(root, mode: 0o711) } catch { throw RuntimeError("state root \(root): \(error)") }
        guard mkdir(state, 0o711) == 0 else {
            if errno == EEXIST { throw RuntimeError("container \(id) already exists") }
            throw RuntimeError("state directory \(state): \(String(cString: strerror(errno)))")
        }
        var cgroupCreated: String?
        var systemdScope: String?
        do throws(RuntimeError) {
            var plan = LaunchPlan()
            if let backend {
                try backend.prepare(spec, id: id, bundle: bundle, state: state, options: options, plan: &plan)
            } else {
                try prepareOwnSetup(spec, id: id, bundle: bundle, state: state, options: options, plan: &plan)
            }
            let placement = try planCgroup(spec, id: id, state: state, plan: &plan)
            let cgroup = placement.path
            var procs = placement.procs
            systemdScope = placement.systemdScope
            // A scope is ours once the monitor made it (one of that name may be another's).
            if systemdScope == nil { cgroupCreated = cgroup }
            plan.record("exitfile", ["\(state)/exit.json"])
            plan.record("pidfile", ["\(state)/pid"])
            plan.record("statedir", [state])
            plan.record("stdio", [inheritStdio && options.consoleSocket == nil ? "1" : "0"])
            if let logPath = options.logPath { plan.record("logfile", [logPath]) }
            if options.logPath != nil, options.consoleSocket == nil {
                if options.stdin != .none { plan.record("stdin", [String(options.stdin.rawValue)]) }
                if options.attach { plan.record("attach", ["1"]) }
            }
            if let identifier = options.journalIdentifier, options.logPath != nil { plan.record("journal", [identifier]) }
            do { try AtomicFile.write(plan.bytes, to: "\(state)/plan", mode: 0o600) } catch { throw RuntimeError("writing the plan: \(error)") }

            let (spawned, reports) = try ProcessSpawner.spawnReading(helper, ["__iotkube-monitor", "\(state)/plan", "3"], at: [3])
            let first = reports.line() ?? "error the monitor exited without a report"
            // "created <container pid> <its start ticks> <monitor pid> <its start ticks>": the
            // spawned process went on as the monitor in a child of its own and exited; reaped
            // here at once, as is one that failed. The monitor, detached for the container's
            // life, is nobody's child here: init reaps it when the container has ended.
            let fields = first.split(separator: " ")
            let detached = fields.count >= 5 ? Int32(fields[3]) : nil
            if detached != nil || fields.first != "created" { _ = ProcessSpawner.wait(spawned) }
            guard fields.count >= 2, fields[0] == "created", let pid = Int32(fields[1]) else {
                throw RuntimeError("container \(id): \(first.hasPrefix("error ") ? String(first.dropFirst(6)) : first)")
            }
            let monitor = detached ?? spawned
            let monitorStartTicks = fields.count >= 5 ? UInt64(fields[4]) : nil
            if systemdScope != nil {
                // In its scope now, waiting for `start`: the limits systemd does not set, and the
                // device filter, before any of its own code runs.
                cgroupCreated = cgroup
                procs = try cgroups.create(cgroup, resources: spec.linux?.resources)
            }
            let record = ContainerRecord(
                ociVersion: spec.ociVersion, id: id, bundle: bundle, pid: pid,
                // The monitor read it before it could reap the process.
                processStartTicks: fields.count >= 3 ? UInt64(fields[2]) ?? 0 : ProcessInfoReader.startTicks(pid) ?? 0,
                monitorPid: monitor, monitorStartTicks: monitorStartTicks ?? ProcessInfoReader.startTicks(monitor), cgroupPath: cgroup, annotations: spec.annotations, createdAt: Self.now(), startedAt: nil,
                cgroupProcs: procs, systemdScope: systemdScope)
            try save(record)
            if let pidFile = options.pidFile {
                do { try AtomicFile.write(String(pid), to: pidFile, mode: 0o644) } catch { throw RuntimeError("--pid-file \(pidFile): \(error)") }
            }
            return (record, reports)
        } catch {
            if let cgroupCreated {
                cgroups.kill(cgroupCreated)
                if let systemdScope { try? SystemdUnits().stop(systemdScope) }
                cgroups.remove(cgroupCreated)
            }
            backend?.delete(id: id)   // what the external runtime may have made (a retry uses the id again)
            try? FileTree.remove(state)
            throw error
        }
    }

    /// How the process ended (nil while it runs), with OOM kills from the cgroup.
    public func exitRecord(id: String) -> ContainerExit? {
        guard let bytes = try? AtomicFile.read("\(directory(id))/exit.json"),
              var exit = try? KubeJSON.decode(ContainerExit.self, from: bytes, validation: .discard) else { return nil }
        if let record = try? record(id: id), exit.signal == SIGKILL || exit.exitCode == 137 {
            exit.oomKilled = (exit.oomKills ?? 0) > 0 || cgroups.statistics(record.cgroupPath).oomKills > 0
        }
        return exit
    }

    public func status(of record: ContainerRecord) -> ContainerStatus {
        let exitFile = "\(directory(record.id))/exit.json"
        if FileTree.exists(exitFile) { return .stopped }
        guard isContainerProcess(record) else {
            // Reaped but not yet recorded: the monitor writes exit.json right after reaping, and
            // "stopped" promises an exit record, so the container stays running until then.
            if let ticks = record.monitorStartTicks, ProcessInfoReader.isAlive(record.monitorPid),
               ProcessInfoReader.startTicks(record.monitorPid) == ticks, !FileTree.exists(exitFile) {
                return .running
            }
            return .stopped
        }
        let created = FileTree.exists("\(directory(record.id))/exec.fifo") || FileTree.exists("\(directory(record.id))/\(ExternalBackend.createdMarker)")
        return created ? .created : .running
    }

    /// Whether `record.pid` is still the container's process (not gone, not reused: the same
    /// start time). Only then may it be signalled or joined.
    func isContainerProcess(_ record: ContainerRecord) -> Bool {
        record.pid > 0 && (Glibc.kill(record.pid, 0) == 0 || errno == EPERM) && ProcessInfoReader.startTicks(record.pid) == record.processStartTicks
    }

    // MARK: start / state / kill / delete / list

    /// Lets a created container's process run (it blocks opening the exec fifo until now).
    public func start(id: String) throws(RuntimeError) {
        var record = try record(id: id)
        let status = status(of: record)
        guard status == .created else { throw RuntimeError("container \(id) is \(status.rawValue), not created") }
        if let backend {
            try backend.start(id: id, state: directory(id))
            record.startedAt = Self.now()
            return try save(record)
        }
        let fifo = "\(directory(id))/exec.fifo"
        let descriptor = open(fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard descriptor >= 0 else { throw RuntimeError("container \(id): exec fifo: \(String(cString: strerror(errno)))") }
        defer { close(descriptor) }
        let hooks = (try? Self.loadSpec(bundle: record.bundle))?.hooks
        // The process opens the other end, runs the startContainer hooks and writes one byte:
        // wait 10 s for it, plus the hooks' timeouts (an hour for a hook without one).
        let startHooks = hooks?.startContainer ?? []
        let rounds = 100 + startHooks.prefix(16).reduce(0) { $0 + 10 * min(max($1.timeout ?? 3600, 0), 86_400) }
        var pollDescriptor = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
        var byte: UInt8 = 0
        var got = 0
        var round = 0
        while round < rounds {
            round += 1
            _ = poll(&pollDescriptor, 1, 100)
            got = read(descriptor, &byte, 1)
            if got == 1 { break }
            // The writer came and went without the byte (a hook failed, the process died): the
            // fifo reads as ended at once from now on; wait for the exit instead of spinning.
            if got == 0, pollDescriptor.revents & Int16(POLLHUP) != 0 { usleep(100_000) }
            if self.status(of: record) == .stopped {
                throw RuntimeError("container \(id) exited before it started\(startHooks.isEmpty ? "" : " (a startContainer hook may have failed: see its log)")")
            }
        }
        guard got == 1 else { throw RuntimeError("container \(id) did not start within \(rounds / 10) s") }
        unlink(fifo)
        record.startedAt = Self.now()
        try save(record)
        if let poststart = hooks?.poststart, !poststart.isEmpty {
            for warning in OCIHooks.run(poststart, kind: "poststart", state: try state(id: id)) { OCIHooks.warn("container \(id): \(warning)") }
        }
    }

    public func state(id: String) throws(RuntimeError) -> OCIState {
        let record = try record(id: id)
        let status = status(of: record)
        return OCIState(ociVersion: record.ociVersion, id: id, status: status, pid: status != .stopped && isContainerProcess(record) ? record.pid : 0,
                        bundle: record.bundle, annotations: record.annotations)
    }

    public func kill(id: String, signal: Int32) throws(RuntimeError) {
        let record = try record(id: id)
        let status = status(of: record)
        // A run whose exit is still being recorded reads as running, but its pid is not its own.
        guard status == .created || status == .running, isContainerProcess(record) else { throw RuntimeError("container \(id) is not running") }
        guard Glibc.kill(record.pid, signal) == 0 else { throw RuntimeError("container \(id): kill: \(String(cString: strerror(errno)))") }
    }

    /// Removes a stopped container (with `force`, kills it first).
    public func delete(id: String, force: Bool = false) throws(RuntimeError) {
        let record: ContainerRecord
        do { record = try self.record(id: id) } catch {
            // A half-created container without state: remove what is there.
            if force, FileTree.exists(directory(id)) {
                backend?.delete(id: id)
                try? FileTree.remove(directory(id))
                return
            }
            throw error
        }
        var status = status(of: record)
        if status != .stopped {
            guard force else { throw RuntimeError("container \(id) is \(status.rawValue); stop it first or use --force") }
            if isContainerProcess(record) { _ = Glibc.kill(record.pid, SIGKILL) }
            cgroups.kill(record.cgroupPath)
            for _ in 0..<500 {
                status = self.status(of: record)
                if status == .stopped { break }
                usleep(10_000)
            }
        }
        cgroups.kill(record.cgroupPath)
        // The monitor records the exit (exit.json) after reaping: let it finish writing into the
        // directory before that is removed.
        for _ in 0..<1000 where !FileTree.exists(directory(id) + "/exit.json") && ProcessInfoReader.isAlive(record.monitorPid) {
            usleep(10_000)
        }
        backend?.delete(id: id)
        if let scope = record.systemdScope { try? SystemdUnits().stop(scope) }
        cgroups.remove(record.cgroupPath)
        do { try FileTree.remove(directory(id)) } catch { throw RuntimeError("container \(id): removing state: \(error)") }
        if backend == nil, let hooks = (try? Self.loadSpec(bundle: record.bundle))?.hooks?.poststop, !hooks.isEmpty {
            let state = OCIState(ociVersion: record.ociVersion, id: id, status: .stopped, pid: 0, bundle: record.bundle, annotations: record.annotations)
            for warning in OCIHooks.run(hooks, kind: "poststop", state: state) { OCIHooks.warn("container \(id): \(warning)") }
        }
    }


    public func list() -> [OCIState] {
        FileTree.list(root).filter { !$0.hasPrefix(".") }.compactMap { try? state(id: $0) }
    }

    // MARK: exec

    /// Runs `process` inside the running container `id` with our stdio; its exit code.
    public func exec(id: String, process: RuntimeSpec.Process) throws(RuntimeError) -> Int32 {
        let (planPath, arguments) = try execPlan(id: id, process: process)
        defer { unlink(planPath) }
        let pid = try ProcessSpawner.spawn(helper, arguments)
        return ProcessSpawner.wait(pid)
    }

    /// Runs `process` inside the running container `id` with stdin from /dev/null and its output
    /// captured (an exec probe, a lifecycle hook); killed with what it started after
    /// `timeoutSeconds`, or as soon as `cancelled` says so.
    public func execCapturing(
        id: String, process: RuntimeSpec.Process, timeoutSeconds: Double, cancelled: (@Sendable () -> Bool)? = nil
    ) throws(RuntimeError) -> CapturedProcess.Outcome {
        let (planPath, arguments) = try execPlan(id: id, process: process)
        defer { unlink(planPath) }
        return try CapturedProcess.run(helper, arguments, timeoutSeconds: timeoutSeconds, cancelled: cancelled)
    }

    func execPlan(id: String, process: RuntimeSpec.Process, terminal: Bool = false) throws(RuntimeError) -> (String, [String]) {
        let record = try record(id: id)
        // The process itself, not only a run whose exit is still being recorded: its pid may be
        // another process's by now, whose namespaces the exec would join.
        guard status(of: record) == .running, isContainerProcess(record) else { throw RuntimeError("container \(id) is not running") }
        let spec = try Self.loadSpec(bundle: record.bundle)
        let token = String(UInt64.random(in: 0...UInt64.max), radix: 16)
        let seccompPath = try spec.linux?.seccomp.map { (seccomp) throws(RuntimeError) in
            try SeccompFilter.compiled(seccomp, cacheDirectory: "\(root)/.seccomp")
        }
        var plan = LaunchPlan()
        plan.record("joinpid", [String(record.pid)])
        for file in record.cgroupProcs ?? [] { plan.record("cgroupprocs", [file]) }
        try plan.addProcess(process, seccompPath: seccompPath, allowTerminal: terminal)
        let planPath = "\(directory(id))/exec-\(token).plan"
        do { try AtomicFile.write(plan.bytes, to: planPath, mode: 0o600) } catch { throw RuntimeError("writing the exec plan: \(error)") }
        return (planPath, ["__iotkube-exec", planPath])
    }

    static func now() -> Int64 {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        return Int64(time.tv_sec) * 1_000_000_000 + Int64(time.tv_nsec)
    }

    static func absolute(_ path: String) -> String {
        if path.hasPrefix("/") { return path }
        var buffer = [CChar](repeating: 0, count: 4096)
        guard getcwd(&buffer, buffer.count) != nil else { return path }
        let cwd = String(decoding: buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return path == "." ? cwd : "\(cwd)/\(path)"
    }
}
