#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif
import CRuntime
import Runtime
import SystemSupport

/// A pod's network, IPC and UTS namespaces, held by bind mounts in `directory` (no pause
/// process): every container of the pod joins them by path, CNI plugins configure the network
/// one. Created and removed by the agent binary's single-threaded helper mode.
public struct PodSandbox: Sendable, Hashable {
    public let directory: String

    public init(directory: String) { self.directory = directory }

    public var networkNamespace: String { directory + "/net" }
    public var ipcNamespace: String { directory + "/ipc" }
    public var utsNamespace: String { directory + "/uts" }

    /// Whether the namespaces are still held (after an agent restart, the sandbox is re-adopted).
    public var exists: Bool {
        iotkube_is_namespace_file(networkNamespace) == 1
    }

    /// Creates the namespaces with `hostname` and the loopback interface up.
    public static func create(directory: String, hostname: String, helper: String = ProcessSpawner.currentExecutable()) throws(NetworkError) -> PodSandbox {
        if let slash = directory.lastIndex(of: "/"), slash != directory.startIndex {
            do { try FileTree.makeDirectories(String(directory[..<slash]), mode: 0o700) } catch { throw NetworkError("pod sandbox \(directory): \(error)") }
        }
        let outcome = try captured(helper, ["__iotkube-sandbox", "create", directory, hostname], timeoutSeconds: 30)
        guard outcome.status == 0 else { throw NetworkError("pod sandbox: \(outcome.errorOutput.trimmedText)") }
        return PodSandbox(directory: directory)
    }

    /// Releases the namespaces (they end when no container uses them any more).
    public func remove(helper: String = ProcessSpawner.currentExecutable()) throws(NetworkError) {
        let outcome = try captured(helper, ["__iotkube-sandbox", "remove", directory], timeoutSeconds: 30)
        guard outcome.status == 0 else { throw NetworkError("pod sandbox: \(outcome.errorOutput.trimmedText)") }
    }
}
