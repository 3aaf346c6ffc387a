/// A resource the eviction manager watches, named as the kubelet names its signals.
public enum EvictionSignal: String, CaseIterable, Sendable, Comparable {
    case memoryAvailable = "memory.available"
    case nodefsAvailable = "nodefs.available"
    case nodefsInodesFree = "nodefs.inodesFree"
    case imagefsAvailable = "imagefs.available"
    case imagefsInodesFree = "imagefs.inodesFree"
    case pidAvailable = "pid.available"

    /// The node condition a met threshold of this signal sets.
    public var condition: String {
        switch self {
        case .memoryAvailable: "MemoryPressure"
        case .nodefsAvailable, .nodefsInodesFree, .imagefsAvailable, .imagefsInodesFree: "DiskPressure"
        case .pidAvailable: "PIDPressure"
        }
    }

    /// The resource named in eviction messages ("The node was low on resource: memory.").
    public var resource: String {
        switch self {
        case .memoryAvailable: "memory"
        case .nodefsAvailable, .imagefsAvailable: "ephemeral-storage"
        case .nodefsInodesFree, .imagefsInodesFree: "inodes"
        case .pidAvailable: "pids"
        }
    }

    /// Whether the signal counts bytes (shown as binary quantities) rather than items.
    var isBytes: Bool { self == .memoryAvailable || self == .nodefsAvailable || self == .imagefsAvailable }

    /// Memory first: it is reclaimed by the kernel's OOM killer if the agent waits.
    public static func < (lhs: EvictionSignal, rhs: EvictionSignal) -> Bool {
        allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
    }
}
