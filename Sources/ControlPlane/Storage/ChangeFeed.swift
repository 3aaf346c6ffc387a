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
    /// Buffered changes first, then live ones. Finishes if the watcher falls too far behind
    /// (in changes or in bytes); the client then relists, as after kube-apiserver's cacher
    /// terminates a watcher that cannot keep up.
    public let changes: AsyncStream<Change>
}

/// The recent changes kept in memory for watches (the "watch cache"), and who is listening.
///
/// Watching from a revision older than the buffer answers 410 Gone, and clients relist, as
/// they do against Kubernetes when etcd has compacted. The buffer is bounded by a number of
/// changes and by their size (the serialized bytes of the objects they hold): large objects
/// shorten the history a watch can resume from, never the memory limit. Each watcher's
/// undelivered changes are bounded the same way, so one that stops reading is cut off.
struct ChangeFeed {
    private struct Subscriber {
        var resource: String
        var namespace: String?
        var continuation: AsyncStream<Change>.Continuation
        /// The sizes of the changes handed over and possibly not yet taken, oldest first.
        var pending: [Int] = []
        var pendingHead = 0
        /// The sum of `pending` from `pendingHead` on.
        var pendingBytes = 0
        /// How many bytes it may lag behind: the feed's budget, plus the history replayed to it
        /// (shared with the feed's buffer, so no extra memory).
        var byteBudget = Int.max

        /// Hands a change over; false if the watcher lags more than `byteBudget` bytes or
        /// ``ChangeFeed/subscriberBacklog`` changes behind.
        mutating func deliver(_ change: Change, bytes: Int) -> Bool {
            guard case .enqueued(let remaining) = continuation.yield(change) else { return false }
            pending.append(bytes)
            pendingBytes += bytes
            // The stream tells how many changes it still holds: the rest have been taken.
            let undelivered = max(0, ChangeFeed.subscriberBacklog - remaining)
            while pending.count - pendingHead > undelivered {
                pendingBytes -= pending[pendingHead]
                pendingHead += 1
            }
            if pendingHead > 1024, pendingHead * 2 > pending.count {
                pending.removeFirst(pendingHead)
                pendingHead = 0
            }
            return pendingBytes <= byteBudget || pending.count - pendingHead <= 1
        }
    }

    private let capacity: Int
    private let byteLimit: Int
    /// The bytes of changes one watcher may lag behind before it is cut off.
    private let subscriberByteBudget: Int
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

    init(capacity: Int, byteLimit: Int = ChangeFeed.defaultByteLimit, subscriberByteBudget: Int = ChangeFeed.defaultSubscriberByteBudget, startRevision: Int64) {
        self.capacity = max(1, capacity)
        self.byteLimit = max(1, byteLimit)
        self.subscriberByteBudget = max(1, subscriberByteBudget)
        compactedThrough = startRevision
        ring.reserveCapacity(min(capacity, 1024))
    }

    /// The default bound on the bytes of buffered changes.
    static let defaultByteLimit = 64 << 20
    /// The default bound on the bytes one watcher may lag behind.
    static let defaultSubscriberByteBudget = 16 << 20

    var subscriberCount: Int { subscribers.count }
    /// How many changes are buffered.
    var bufferedCount: Int { ring.count - head }
    /// How many watchers have been cut off for lagging behind.
    private(set) var cutOffCount = 0
    /// The bytes of the changes a watcher has yet to take, nil once it is gone.
    func pendingBytes(of subscription: WatchSubscription) -> Int? { subscribers[subscription.id]?.pendingBytes }

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
        var laggards: [Int] = []
        for index in subscribers.indices where Self.matches(subscribers.values[index].resource, subscribers.values[index].namespace, change) {
            if !subscribers.values[index].deliver(change, bytes: bytes) { laggards.append(subscribers.keys[index]) }
        }
        for id in laggards {
            subscribers.removeValue(forKey: id)?.continuation.finish()
            cutOffCount += 1
        }
    }

    mutating func subscribe(resource: String, namespace: String?, after revision: Int64) throws -> WatchSubscription {
        guard revision >= compactedThrough else {
            throw APIError.gone("too old resource version: \(revision) (\(compactedThrough + 1))")
        }
        let (stream, continuation) = AsyncStream.makeStream(of: Change.self, bufferingPolicy: .bufferingOldest(Self.subscriberBacklog))
        var subscriber = Subscriber(resource: resource, namespace: namespace, continuation: continuation)
        for (change, bytes) in ring[head...] where change.revision > revision && Self.matches(resource, namespace, change) {
            _ = subscriber.deliver(change, bytes: bytes)
        }
        subscriber.byteBudget = subscriberByteBudget + subscriber.pendingBytes
        nextID += 1
        subscribers[nextID] = subscriber
        return WatchSubscription(id: nextID, changes: stream)
    }

    mutating func unsubscribe(_ id: Int) {
        subscribers.removeValue(forKey: id)?.continuation.finish()
    }

    private static func matches(_ resource: String, _ namespace: String?, _ change: Change) -> Bool {
        change.resource == resource && (namespace == nil || namespace == change.namespace)
    }
}
