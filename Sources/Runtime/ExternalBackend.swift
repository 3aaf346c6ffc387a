#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif
import CRuntime
import OCI
import SystemSupport

/// An OCI runtime binary (crun, runc) behind the built-in runtime: it makes the container
/// (`create --bundle … --pid-file …`, run by the container's monitor with the monitor's pipes
/// as the container's stdio), starts and deletes it; the monitor, logs, attach, exec, state and
/// exit records stay the built-in runtime's. Its own state is kept under `root`.
public struct ExternalBackend: Sendable {
    /// The runtime's executable.
    public let path: String
    /// Options before the command (`--cgroup-manager=cgroupfs`).
    public let arguments: [String]
    /// The runtime's `--root`.
    public let root: String

    /// Present while a container is created and not started (the built-in runtime's exec fifo).
    static let createdMarker = "created"

    /// `runtime`: an absolute path, or a name looked up in PATH.
    public init(runtime: String, arguments: [String] = [], root: String) throws(RuntimeError) {
        var resolved = runtime
        if !runtime.hasPrefix("/") {
            let variable = getenv("PATH")
            let search = variable != nil ? String(cString: variable!) : "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
            var found: String?
            for directory in search.split(separator: ":") {
                let candidate = String(directory) + "/" + runtime
                if access(candidate, X_OK) == 0 { found = candidate; break }
            }
            guard let found else { throw RuntimeError("runtime \(runtime): not found in PATH (install it, or give its absolute path)") }
            resolved = found
        }
        guard access(resolved, X_OK) == 0 else { throw RuntimeError("runtime \(resolved) is not an executable file") }
        path = resolved
        self.arguments = arguments
        self.root = root
    }

    /// The OCI version written into bundles for it (crun 1.8 and runc 1.1 know up to 1.0.x).
    public static let specVersion = "1.0.2"

    /// The plan for the monitor: the runtime's `create` command line, where it writes the pid
    /// and its errors.
    func prepare(_ spec: RuntimeSpec, id: String, bundle: String, state: String, options: BuiltinRuntime.CreateOptions,
                 plan: inout LaunchPlan) throws(RuntimeError) {
        guard spec.process?.terminal != true else { throw RuntimeError("process.terminal: a terminal needs the built-in runtime (\(path) is configured)") }
        guard let cgroupsPath = spec.linux?.cgroupsPath, cgroupsPath.hasPrefix("/") else {
            throw RuntimeError("linux.cgroupsPath: \(path) needs an absolute path (to find its cgroup again)")
        }
        let pidFile = state + "/runtime.pid", logFile = state + "/runtime.log"
        let command = [path] + arguments + ["--log", logFile, "--root", root, "create", "--bundle", bundle, "--pid-file", pidFile, id]
        plan.record("external", [String(command.count)] + command + [pidFile, logFile])
        do { try AtomicFile.write([], to: state + "/" + Self.createdMarker, mode: 0o600) } catch { throw RuntimeError("\(state): \(error)") }
    }

    /// `start`; the created marker goes once it succeeded.
    func start(id: String, state: String) throws(RuntimeError) {
        let result = try run(["start", id])
        guard result.status == 0 else { throw RuntimeError("\(path) start \(id): \(result.output.isEmpty ? "exit \(result.status)" : result.output)") }
        unlink(state + "/" + Self.createdMarker)
    }

    /// `delete --force` (its state and cgroup); a container it no longer knows is no error.
    func delete(id: String) {
        _ = try? run(["delete", "--force", id])
    }

    func run(_ command: [String]) throws(RuntimeError) -> (status: Int32, output: String) {
        try ProcessSpawner.capture(path, arguments + ["--root", root] + command)
    }
}
