import KubeModel

/// One committed change to an object.
public struct Change: Sendable {
    public var revision: Int64
    /// The storage key of the resource (`pods`, `leases.coordination.k8s.io`).
    public var resource: String
    public var namespace: String
    public var type: WatchEventType
    /// The object after the change (for deletions: as it was, with the deletion's revision).
    public var object: JSONValue
    /// The object before the change (nil for creations); lets filtered watches see objects
    /// entering and leaving their selection.
    public var previous: JSONValue?
}

/// A live subscription to changes; cancel it through ``ObjectStore/cancel(_:)``.
public struct WatchSubscription: Sendable {
    let id: Int
    /// Buffered changes first, then live ones. Finishes if the watcher falls too far behind.
    public let changes: AsyncStream<Change>
}

/// The recent changes kept in memory for watches (the "watch cache"), and who is listening.
///
/// Watching from a revision older than the buffer answers 410 Gone, and clients relist, as
/// they do against Kubernetes when etcd has compacted. The buffer is bounded by a number of
/// changes and by their size (the serialized bytes of the objects they hold): large objects
/// shorten the history a watch can resume from, never the memory limit.
struct ChangeFeed {
    private struct Subscriber {
        var resource: String
        var namespace: String?
        var continuation: AsyncStream<Change>.Continuation
    }

    private let capacity: Int
    private let byteLimit: Int
    /// Buffered changes, oldest first from `head`, with their sizes; the front is dropped lazily.
    private var ring: [(change: Change, bytes: Int)] = []
    private var head = 0
    /// The bytes of the changes from `head` on.
    private(set) var bufferedBytes = 0
    /// Changes with a revision above this are in the ring.
    private(set) var compactedThrough: Int64
    private var subscribers: [Int: Subscriber] = [:]
    private var nextID = 0

    /// How many undelivered changes a watcher may lag behind before it is cut off.
    static let subscriberBacklog = 20_000

    init(capacity: Int, byteLimit: Int = ChangeFeed.defaultByteLimit, startRevision: Int64) {
        self.capacity = max(1, capacity)
        self.byteLimit = max(1, byteLimit)
        compactedThrough = startRevision
        ring.reserveCapacity(min(capacity, 1024))
    }

    /// The default bound on the bytes of buffered changes.
    static let defaultByteLimit = 64 << 20

    var subscriberCount: Int { subscribers.count }
    /// How many changes are buffered.
    var bufferedCount: Int { ring.count - head }

    /// Buffers a change of `bytes` bytes (dropping the oldest past either bound; the newest
    /// change always stays) and hands it to every matching watcher.
    mutating func publish(_ change: Change, bytes: Int) {
        ring.append((change, bytes))
        bufferedBytes += bytes
        while bufferedCount > 1, bufferedCount > capacity || bufferedBytes > byteLimit {
            compactedThrough = ring[head].change.revision
            bufferedBytes -= ring[head].bytes
            head += 1
        }
        if head > 1024, head * 2 > ring.count {
            ring.removeFirst(head)
            head = 0
        }
        for (id, subscriber) in subscribers where Self.matches(subscriber.resource, subscriber.namespace, change) {
            if case .dropped = subscriber.continuation.yield(change) {
                subscriber.continuation.finish()
                subscribers[id] = nil
            }
        }
    }

    mutating func subscribe(resource: String, namespace: String?, after revision: Int64) throws -> WatchSubscription {
        guard revision >= compactedThrough else {
            throw APIError.gone("too old resource version: \(revision) (\(compactedThrough + 1))")
        }
        let (stream, continuation) = AsyncStream.makeStream(of: Change.self, bufferingPolicy: .bufferingOldest(Self.subscriberBacklog))
        for (change, _) in ring[head...] {
            if change.revision > revision, Self.matches(resource, namespace, change) { continuation.yield(change) }
        }
        nextID += 1
        subscribers[nextID] = Subscriber(resource: resource, namespace: namespace, continuation: continuation)
        return WatchSubscription(id: nextID, changes: stream)
    }

    mutating func unsubscribe(_ id: Int) {
        subscribers.removeValue(forKey: id)?.continuation.finish()
    }

    private static func matches(_ resource: String, _ namespace: String?, _ change: Change) -> Bool {
        change.resource == resource && (namespace == nil || namespace == change.namespace)
    }
}
