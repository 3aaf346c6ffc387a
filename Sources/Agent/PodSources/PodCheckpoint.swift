import KubeModel
import SystemSupport

/// The desired pods of this node on disk, so that after a reboot without a server the board
/// starts what it last ran (edge autonomy). Only what decides what runs is kept (metadata and
/// spec, no status, no resource versions), and the file is rewritten only when that changes:
/// status updates never touch the SD card.
public struct PodCheckpoint: Sendable {
    public let path: String
    private var lastWritten: [UInt8]?

    public init(path: String) { self.path = path }

    /// The pod as checkpointed: identity, labels, annotations, owner, deletion mark and spec, and
    /// for a pod that has ended (Succeeded, Failed — evicted, rejected) that final phase, so it
    /// is not run again after a reboot. A final phase changes once: the file is rewritten once.
    public static func essential(_ pod: Pod) -> Pod {
        var metadata = ObjectMeta(name: pod.metadata.name, namespace: pod.metadata.namespace, labels: pod.metadata.labels, annotations: pod.metadata.annotations)
        metadata.uid = pod.metadata.uid
        metadata.creationTimestamp = pod.metadata.creationTimestamp
        metadata.deletionTimestamp = pod.metadata.deletionTimestamp
        metadata.deletionGracePeriodSeconds = pod.metadata.deletionGracePeriodSeconds
        metadata.ownerReferences = pod.metadata.ownerReferences
        var essential = Pod(metadata: metadata, spec: pod.spec)
        if let phase = pod.status?.phase, phase == .succeeded || phase == .failed {
            var status = PodStatus()
            status.phase = phase
            status.reason = pod.status?.reason
            status.message = pod.status?.message
            essential.status = status
        }
        return essential
    }

    /// Reads the checkpoint; a missing file is an empty set, a damaged one is an error naming it.
    public func load() throws -> [Pod] {
        guard let bytes = try AtomicFile.read(path) else { return [] }
        do {
            return try KubeJSON.decode(KubeList<Pod>.self, from: bytes, validation: .discard).items
        } catch {
            throw ProvisioningError("pod checkpoint \(path) is damaged (\(error)); remove it and the agent starts from the API's pods")
        }
    }

    /// Writes `pods` (atomically, fsync'd) when they differ from what the file holds; true when written.
    @discardableResult
    public mutating func save(_ pods: [Pod]) throws -> Bool {
        var list = KubeList<Pod>(items: pods.map(Self.essential).sorted { ($0.metadata.uid ?? "") < ($1.metadata.uid ?? "") })
        list.apiVersion = "v1"
        list.kind = "PodList"
        let bytes = try KubeJSON.encode(list)
        if lastWritten == nil { lastWritten = try AtomicFile.read(path) }
        guard bytes != lastWritten else { return false }
        if let slash = path.lastIndex(of: "/") { try FileTree.makeDirectories(String(path[..<slash]), mode: 0o700) }
        try AtomicFile.write(bytes, to: path, mode: 0o600)
        lastWritten = bytes
        return true
    }
}
