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
/// one.
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

    /// Creates the namespaces with `hostname` and the loopback interface up, in-process (a
    /// child cloned into the new namespaces holds them; no program is started).
    public static func create(directory: String, hostname: String) throws(NetworkError) -> PodSandbox {
        if let slash = directory.lastIndex(of: "/"), slash != directory.startIndex {
            do { try FileTree.makeDirectories(String(directory[..<slash]), mode: 0o700) } catch { throw NetworkError("pod sandbox \(directory): \(error)") }
        }
        try Self.call { iotkube_sandbox_create(directory, hostname, $0, $1) }
        return PodSandbox(directory: directory)
    }

    /// Releases the namespaces (they end when no container uses them any more).
    public func remove() throws(NetworkError) {
        try Self.call { iotkube_sandbox_remove(directory, $0, $1) }
    }

    private static func call(_ body: (UnsafeMutablePointer<CChar>, UInt) -> Int32) throws(NetworkError) {
        var message = [CChar](repeating: 0, count: 512)
        let status = message.withUnsafeMutableBufferPointer { body($0.baseAddress!, UInt($0.count)) }
        guard status == 0 else { throw NetworkError("pod \(String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))") }
    }
}
