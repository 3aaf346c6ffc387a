#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif
import CRuntime
import KubeCoding

/// An external OCI runtime (crun, runc, …) driven through its command line, so the agent can
/// use it instead of the built-in runtime (`runtime: /usr/bin/crun` in agent.yaml).
public struct OCIRuntimeCLI: ContainerRuntime {
    public let path: String
    public let globalArguments: [String]
    public let root: String

    public init(path: String, globalArguments: [String] = [], root: String) throws(RuntimeError) {
        guard access(path, X_OK) == 0 else { throw RuntimeError("runtime \(path) is not an executable file") }
        self.path = path
        self.globalArguments = globalArguments
        self.root = root
    }

    public var name: String { path }

    /// Runs the runtime; output (stdout and stderr) is captured, except that a created
    /// container's stdio goes to `stdio` when given.
    func invoke(_ arguments: [String], stdio: Int32? = nil) throws(RuntimeError) -> (status: Int32, output: String) {
        try ProcessSpawner.capture(path, globalArguments + ["--root", root] + arguments, output: stdio)
    }

    func check(_ arguments: [String], what: String, stdio: Int32? = nil) throws(RuntimeError) -> String {
        let result = try invoke(arguments, stdio: stdio)
        guard result.status == 0 else { throw RuntimeError("\(path) \(what): \(result.output.isEmpty ? "exit \(result.status)" : result.output)") }
        return result.output
    }

    public func create(id: String, bundle: String, options: BuiltinRuntime.CreateOptions) throws(RuntimeError) {
        var arguments = ["create", "--bundle", bundle]
        if let pidFile = options.pidFile { arguments += ["--pid-file", pidFile] }
        if let consoleSocket = options.consoleSocket { arguments += ["--console-socket", consoleSocket] }
        // An external runtime's container writes its output as it comes (not CRI-framed).
        let logPath = options.logPath ?? "/dev/null"
        let log = open(logPath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o640)
        guard log >= 0 else { throw RuntimeError("log \(logPath): \(String(cString: strerror(errno)))") }
        defer { close(log) }
        // Its errors then go to the log as well; say where.
        let result = try invoke(arguments + [id], stdio: log)
        guard result.status == 0 else { throw RuntimeError("\(path) create \(id) failed (exit \(result.status)); see \(logPath)") }
    }

    public func start(id: String) throws(RuntimeError) { _ = try check(["start", id], what: "start \(id)") }

    public func state(id: String) throws(RuntimeError) -> OCIState {
        let output = try check(["state", id], what: "state \(id)")
        do { return try KubeJSON.decode(OCIState.self, from: Array(output.utf8), validation: .discard) } catch {
            throw RuntimeError("\(path) state \(id): unreadable answer: \(error)")
        }
    }

    public func kill(id: String, signal: Int32) throws(RuntimeError) { _ = try check(["kill", id, String(signal)], what: "kill \(id)") }

    public func delete(id: String, force: Bool) throws(RuntimeError) {
        _ = try check(["delete"] + (force ? ["--force"] : []) + [id], what: "delete \(id)")
    }
}
