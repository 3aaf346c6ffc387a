/// A resource the eviction manager watches, named as the kubelet names its signals.
public enum EvictionSignal: String, CaseIterable, Sendable, Comparable {
    case memoryAvailable = "memory.available"
    /// PSI: the share of the last 10 s in which every task was stalled on memory (the board
    /// thrashing although memory.available may look fine). Not a kubelet signal: set by
    /// `memoryPressureStallPercent`, read as "not stalled" in basis points of 10 000.
    case memoryPressure = "memory.pressure"
    case nodefsAvailable = "nodefs.available"
    case nodefsInodesFree = "nodefs.inodesFree"
    case imagefsAvailable = "imagefs.available"
    case imagefsInodesFree = "imagefs.inodesFree"
    case pidAvailable = "pid.available"

    /// The node condition a met threshold of this signal sets.
    public var condition: String {
        switch self {
        case .memoryAvailable, .memoryPressure: "MemoryPressure"
        case .nodefsAvailable, .nodefsInodesFree, .imagefsAvailable, .imagefsInodesFree: "DiskPressure"
        case .pidAvailable: "PIDPressure"
        }
    }

    /// The resource named in eviction messages ("The node was low on resource: memory.").
    public var resource: String {
        switch self {
        case .memoryAvailable, .memoryPressure: "memory"
        case .nodefsAvailable, .imagefsAvailable: "ephemeral-storage"
        case .nodefsInodesFree, .imagefsInodesFree: "inodes"
        case .pidAvailable: "pids"
        }
    }

    /// Whether the signal counts bytes (shown as binary quantities) rather than items.
    var isBytes: Bool { self == .memoryAvailable || self == .nodefsAvailable || self == .imagefsAvailable }

    /// Whether it is about memory (reclaimed by evicting pods, ranked by memory use).
    var isMemory: Bool { self == .memoryAvailable || self == .memoryPressure }

    /// Memory first: it is reclaimed by the kernel's OOM killer if the agent waits.
    public static func < (lhs: EvictionSignal, rhs: EvictionSignal) -> Bool {
        allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
    }
}
