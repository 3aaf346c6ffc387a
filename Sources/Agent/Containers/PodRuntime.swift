import OCI
import Runtime

/// What the pod workers need of a container runtime: the built-in runtime on a board, a fake
/// runtime in the workers' own tests.
public protocol PodRuntime: Sendable {
    /// Where the runtime keeps its state (container bundles are written below it).
    var root: String { get }
    /// The binary whose helper modes make pod sandboxes.
    var helper: String { get }
    func create(id: String, bundle: String, options: BuiltinRuntime.CreateOptions) throws(RuntimeError) -> ContainerRecord
    func start(id: String) throws(RuntimeError)
    func state(id: String) throws(RuntimeError) -> OCIState
    func record(id: String) throws(RuntimeError) -> ContainerRecord
    /// How a stopped container's process ended (nil while it runs, or when it was not recorded).
    func exitRecord(id: String) -> ContainerExit?
    func kill(id: String, signal: Int32) throws(RuntimeError)
    func delete(id: String, force: Bool) throws(RuntimeError)
    func list() -> [OCIState]
    /// Runs a process inside a running container with its output captured, bounded in time and
    /// ended early when `cancelled` says so.
    func execCapturing(
        id: String, process: RuntimeSpec.Process, timeoutSeconds: Double, cancelled: (@Sendable () -> Bool)?
    ) throws(RuntimeError) -> CapturedProcess.Outcome
    /// Starts a process inside a running container with its stdio (pipes, or a terminal)
    /// given to the caller (`kubectl exec`).
    func execAttached(id: String, process: RuntimeSpec.Process, stdin: Bool) throws(RuntimeError) -> AttachedProcess
    /// The configuration a container was created from.
    func spec(bundle: String) throws(RuntimeError) -> RuntimeSpec
    /// Memory and processes of a container's cgroup.
    func statistics(of record: ContainerRecord) -> CgroupStatistics
    /// The OCI version bundles must carry for this runtime (nil: the agent's own).
    var bundleVersion: String? { get }
    /// The directory where the container's exit record appears when its process ends (nil:
    /// the runtime tells of exits only when asked).
    func exitRecordDirectory(id: String) -> String?
}

extension PodRuntime {
    public func exitRecordDirectory(id: String) -> String? { nil }
}

extension BuiltinRuntime: PodRuntime {
    public func spec(bundle: String) throws(RuntimeError) -> RuntimeSpec { try Self.loadSpec(bundle: bundle) }
    public func statistics(of record: ContainerRecord) -> CgroupStatistics { cgroups.statistics(record.cgroupPath) }
    public var bundleVersion: String? { backend == nil ? nil : ExternalBackend.specVersion }
    public func exitRecordDirectory(id: String) -> String? { stateDirectory(id: id) }
}
