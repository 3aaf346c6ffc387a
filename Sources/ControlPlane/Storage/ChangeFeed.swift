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
/// they do against Kubernetes when etcd has compacted.
struct ChangeFeed {
    private struct Subscriber {
        var resource: String
        var namespace: String?
        var continuation: AsyncStream<Change>.Continuation
    }

    private let capacity: Int
    private var ring: [Change] = []
    private var head = 0
    /// Changes with a revision above this are in the ring.
    private(set) var compactedThrough: Int64
    private var subscribers: [Int: Subscriber] = [:]
    private var nextID = 0

    /// How many undelivered changes a watcher may lag behind before it is cut off.
    static let subscriberBacklog = 20_000

    init(capacity: Int, startRevision: Int64) {
        self.capacity = max(1, capacity)
        compactedThrough = startRevision
        ring.reserveCapacity(min(capacity, 1024))
    }

    var subscriberCount: Int { subscribers.count }

    mutating func publish(_ change: Change) {
        if ring.count < capacity {
            ring.append(change)
        } else {
            compactedThrough = ring[head].revision
            ring[head] = change
            head = (head + 1) % capacity
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
        for index in 0..<ring.count {
            let change = ring[(head + index) % ring.count]
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
