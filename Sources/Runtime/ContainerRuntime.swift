/// What the agent needs from a container runtime: the OCI lifecycle on bundles. The built-in
/// runtime and any OCI runtime CLI (crun, runc) implement it.
public protocol ContainerRuntime: Sendable {
    /// Human-readable: which runtime this is.
    var name: String { get }
    func create(id: String, bundle: String, options: BuiltinRuntime.CreateOptions) throws(RuntimeError)
    func start(id: String) throws(RuntimeError)
    func state(id: String) throws(RuntimeError) -> OCIState
    func kill(id: String, signal: Int32) throws(RuntimeError)
    func delete(id: String, force: Bool) throws(RuntimeError)
}

extension BuiltinRuntime: ContainerRuntime {
    public var name: String { "iotkube built-in (\(cgroups.summary))" }

    public func create(id: String, bundle: String, options: CreateOptions) throws(RuntimeError) {
        let _: ContainerRecord = try create(id: id, bundle: bundle, options: options)
    }
}

/// Chooses the runtime the agent configuration names: nil or "builtin" for the built-in one,
/// otherwise the path of an OCI runtime CLI.
public enum RuntimeSelection {
    public static func make(runtime: String?, arguments: [String] = [], root: String) throws(RuntimeError) -> any ContainerRuntime {
        guard let runtime, runtime != "builtin", !runtime.isEmpty else { return BuiltinRuntime(root: root) }
        return try OCIRuntimeCLI(path: runtime, globalArguments: arguments, root: root)
    }
}
