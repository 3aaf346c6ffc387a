/// The eviction signals observed at one moment: for each, what is available and the capacity
/// percentages refer to. Memory is `MemAvailable` of /proc/meminfo; nodefs is the filesystem of
/// the state directory (pods, writable layers, emptyDirs) and of the pod logs; imagefs that of
/// the image store (the same figures when they share a filesystem, as the kubelet counts them);
/// pids are the task limit minus the tasks that exist.
public struct NodeResourceObservation: Sendable, Equatable {
    public struct Reading: Sendable, Equatable {
        public var available: Int64
        public var capacity: Int64
        public init(available: Int64, capacity: Int64) {
            self.available = available
            self.capacity = capacity
        }
    }

    public var readings: [EvictionSignal: Reading]

    public init(readings: [EvictionSignal: Reading] = [:]) { self.readings = readings }

    public subscript(signal: EvictionSignal) -> Reading? { readings[signal] }

    /// Reads every signal this host reports; one that cannot be read is left out (its
    /// thresholds are then not evaluated).
    public static func observe(host: HostReader, nodefsPath: String, imagefsPath: String) -> NodeResourceObservation {
        var readings: [EvictionSignal: Reading] = [:]
        let memory = host.memory()
        if memory.total > 0 { readings[.memoryAvailable] = Reading(available: memory.available, capacity: memory.total) }
        if let pressure = host.memoryPressure() {
            readings[.memoryPressure] = Reading(available: 10_000 - Int64((pressure.full.avg10 * 100).rounded()), capacity: 10_000)
        }
        if let disk = host.filesystem(nodefsPath) { readings[.nodefsAvailable] = Reading(available: disk.available, capacity: disk.total) }
        if let inodes = host.inodes(nodefsPath), inodes.total > 0 {
            readings[.nodefsInodesFree] = Reading(available: inodes.free, capacity: inodes.total)
        }
        if let disk = host.filesystem(imagefsPath) { readings[.imagefsAvailable] = Reading(available: disk.available, capacity: disk.total) }
        if let inodes = host.inodes(imagefsPath), inodes.total > 0 {
            readings[.imagefsInodesFree] = Reading(available: inodes.free, capacity: inodes.total)
        }
        if let processes = host.processes() {
            readings[.pidAvailable] = Reading(available: max(0, processes.limit - processes.current), capacity: processes.limit)
        }
        return NodeResourceObservation(readings: readings)
    }
}
