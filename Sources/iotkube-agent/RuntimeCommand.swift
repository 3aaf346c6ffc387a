import ArgumentParser
import CRuntime
import KubeModel
import OCI
import Runtime
import SystemSupport

/// `iotkube-agent runtime …`: the built-in runtime with the OCI runtime command set
/// (create, start, state, kill, delete, run, exec, list), so it can be driven like runc/crun.
struct RuntimeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "runtime", abstract: "The built-in OCI runtime (runc/crun-compatible verbs).",
        subcommands: [RuntimeCreate.self, RuntimeStart.self, RuntimeState.self, RuntimeKill.self, RuntimeDelete.self,
                      RuntimeRun.self, RuntimeExec.self, RuntimeList.self, RuntimeSpecCommand.self]
    )

    /// `--root`, `--log`, `--log-format` before the verb, as runc takes them.
    @OptionGroup var options: RuntimeOptions
}

/// Global options of the runtime verbs (as runc's --root, --log, --log-format).
struct RuntimeOptions: ParsableArguments {
    @Option(help: "Where container state lives.")
    var root = "/run/iotkube/runtime"

    @Option(help: "Append errors to this file as well (what containerd-style callers read).")
    var log: String?

    @Option(help: "text or json.")
    var logFormat = "text"

    @Option(help: ArgumentHelp("Drive this OCI runtime CLI instead of the built-in runtime (what `runtime:` in agent.yaml does).", visibility: .hidden))
    var backend: String?

    @Option(parsing: .singleValue, help: ArgumentHelp("A global argument for --backend (repeatable).", visibility: .hidden))
    var backendArg: [String] = []

    func runtime() -> BuiltinRuntime {
        _ = iotkube_runtime_linked()
        return BuiltinRuntime(root: root)
    }

    /// The runtime behind the lifecycle verbs: built-in, or the --backend CLI.
    func lifecycle() throws -> any ContainerRuntime {
        _ = iotkube_runtime_linked()
        return try RuntimeSelection.make(runtime: backend, arguments: backendArg, root: root)
    }

    /// Reports an error the way the caller asked, then fails.
    func fail(_ error: any Error) -> ExitCode {
        let message = "\(error)"
        printToStandardError("iotkube-agent runtime: \(message)")
        if let log {
            let line: String
            if logFormat == "json" {
                line = String(decoding: KubeJSON.serialize(["level": "error", "msg": .string(message)]), as: UTF8.self) + "\n"
            } else {
                line = "error: \(message)\n"
            }
            let existing = (try? AtomicFile.read(log)) ?? []
            try? AtomicFile.write(existing + Array(line.utf8), to: log, mode: 0o644)
        }
        return ExitCode.failure
    }
}

struct RuntimeCreate: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "create", abstract: "Create a container from a bundle; it waits for `start`.")
    @OptionGroup var options: RuntimeOptions
    @Option(name: [.short, .long], help: "The bundle directory (holding config.json).")
    var bundle = "."
    @Option(help: "Write the container's pid here.")
    var pidFile: String?
    @Option(help: "With process.terminal: the AF_UNIX socket that receives the terminal's master (SCM_RIGHTS).")
    var consoleSocket: String?
    @Option(help: "Write the container's output to this CRI-format log instead of inheriting stdio.")
    var containerLog: String?
    @Flag(help: "With --container-log: also send each line to journald (CONTAINER_ID=ID).")
    var journal = false
    @Argument var id: String

    func run() throws {
        do {
            try options.lifecycle().create(id: id, bundle: bundle, options: .init(
                pidFile: pidFile, logPath: containerLog, journalIdentifier: journal ? id : nil, consoleSocket: consoleSocket))
        } catch { throw options.fail(error) }
    }
}

struct RuntimeStart: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "start", abstract: "Start a created container's process.")
    @OptionGroup var options: RuntimeOptions
    @Argument var id: String
    func run() throws {
        do { try options.lifecycle().start(id: id) } catch { throw options.fail(error) }
    }
}

struct RuntimeState: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "state", abstract: "Print the OCI state of a container as JSON.")
    @OptionGroup var options: RuntimeOptions
    @Argument var id: String
    func run() throws {
        do {
            let state = try options.lifecycle().state(id: id)
            print(String(decoding: try KubeJSON.encode(state, pretty: true), as: UTF8.self))
        } catch { throw options.fail(error) }
    }
}

struct RuntimeKill: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "kill", abstract: "Send a signal (default SIGTERM) to a container's process.")
    @OptionGroup var options: RuntimeOptions
    @Argument var id: String
    @Argument var signal = "SIGTERM"

    static let signals: [String: Int32] = [
        "HUP": 1, "INT": 2, "QUIT": 3, "ILL": 4, "TRAP": 5, "ABRT": 6, "BUS": 7, "FPE": 8, "KILL": 9, "USR1": 10, "SEGV": 11,
        "USR2": 12, "PIPE": 13, "ALRM": 14, "TERM": 15, "CHLD": 17, "CONT": 18, "STOP": 19, "TSTP": 20, "TTIN": 21, "TTOU": 22,
        "URG": 23, "XCPU": 24, "XFSZ": 25, "VTALRM": 26, "PROF": 27, "WINCH": 28, "IO": 29, "PWR": 30, "SYS": 31,
    ]

    static func parse(_ text: String) throws(RuntimeError) -> Int32 {
        if let number = Int32(text), (1...64).contains(number) { return number }
        let name = text.uppercased().hasPrefix("SIG") ? String(text.uppercased().dropFirst(3)) : text.uppercased()
        guard let number = signals[name] else { throw RuntimeError("unknown signal \"\(text)\"") }
        return number
    }

    func run() throws {
        do { try options.lifecycle().kill(id: id, signal: try Self.parse(signal)) } catch { throw options.fail(error) }
    }
}

struct RuntimeDelete: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "delete", abstract: "Delete a stopped container (--force: kill it first).")
    @OptionGroup var options: RuntimeOptions
    @Flag(name: [.short, .long]) var force = false
    @Argument var id: String
    func run() throws {
        do { try options.lifecycle().delete(id: id, force: force) } catch { throw options.fail(error) }
    }
}

struct RuntimeRun: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "run", abstract: "Create, start and wait for a container; exit with its status.")
    @OptionGroup var options: RuntimeOptions
    @Option(name: [.short, .long]) var bundle = "."
    @Flag(help: "Keep the container's state after it exits (default: delete it).")
    var keep = false
    @Argument var id: String
    func run() throws {
        let runtime = options.runtime()
        let code: Int32
        do { code = try runtime.run(id: id, bundle: bundle) } catch { throw options.fail(error) }
        if let exit = runtime.exitRecord(id: id) {
            if !exit.error.isEmpty { printToStandardError("iotkube-agent runtime: container \(id): \(exit.error)") }
            if exit.oomKilled == true { printToStandardError("iotkube-agent runtime: container \(id): killed by the OOM killer (memory limit reached)") }
        }
        if !keep { try? runtime.delete(id: id, force: true) }
        if code != 0 { throw ExitCode(code) }
    }
}

struct RuntimeExec: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "exec", abstract: "Run a command inside a running container.")
    @OptionGroup var options: RuntimeOptions
    @Option(help: "A process JSON (OCI `process` object) instead of a command.")
    var process: String?
    @Option(name: .customLong("cwd")) var workingDirectory: String?
    @Option(name: [.short, .customLong("env")]) var environment: [String] = []
    @Argument var id: String
    @Argument(parsing: .postTerminator) var command: [String] = []

    func run() throws {
        let runtime = options.runtime()
        let code: Int32
        do {
            var spec: RuntimeSpec.Process
            if let process {
                guard let bytes = try AtomicFile.read(process) else { throw RuntimeError("--process \(process) does not exist") }
                spec = try KubeJSON.decode(RuntimeSpec.Process.self, from: bytes, validation: .discard)
            } else {
                guard !command.isEmpty else { throw RuntimeError("exec: give a command after --, or --process FILE") }
                // The container's own process settings, with this command.
                let record = try runtime.record(id: id)
                guard let base = try BuiltinRuntime.loadSpec(bundle: record.bundle).process else { throw RuntimeError("the container has no process") }
                spec = base
                spec.args = command
                spec.terminal = false
            }
            if let workingDirectory { spec.cwd = workingDirectory }
            if !environment.isEmpty { spec.env = (spec.env ?? []) + environment }
            code = try runtime.exec(id: id, process: spec)
        } catch { throw options.fail(error) }
        if code != 0 { throw ExitCode(code) }
    }
}

struct RuntimeList: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List containers.")
    @OptionGroup var options: RuntimeOptions
    @Flag(name: .short, help: "IDs only.") var quiet = false
    func run() throws {
        let states = options.runtime().list()
        if quiet {
            for state in states { print(state.id) }
            return
        }
        print("ID".padding(24) + "PID".padding(10) + "STATUS".padding(10) + "BUNDLE")
        for state in states {
            print(state.id.padding(24) + String(state.pid ?? 0).padding(10) + state.status.rawValue.padding(10) + state.bundle)
        }
    }
}

struct RuntimeSpecCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "spec", abstract: "Write a default config.json (rootfs in ./rootfs) into a bundle.")
    @Option(name: [.short, .long]) var bundle = "."
    func run() throws {
        let path = "\(bundle)/config.json"
        if (try? AtomicFile.read(path)) != nil { throw ValidationError("\(path) already exists") }
        try AtomicFile.write(try KubeJSON.encode(DefaultSpec.make(), pretty: true), to: path, mode: 0o644)
    }
}

extension String {
    func padding(_ width: Int) -> String { count >= width ? self + " " : self + String(repeating: " ", count: width - count) }
}
