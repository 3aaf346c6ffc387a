import KubeClient
import KubeModel
import Logging
import ServiceLifecycle

/// Events about pods (pulls, starts, kills, probe failures, back-offs), as the kubelet emits
/// them: repeats of the same event within 10 minutes become one event with a count (updated at
/// most every 30 s), and a token bucket (burst 25, one more every 2 s) keeps a crash-looping
/// board from flooding the API. Events that cannot be delivered while the API is away are
/// dropped (they describe the moment), never stored.
public actor PodEventRecorder {
    struct Pending: Sendable {
        var event: Event
        var key: String
    }

    struct Aggregate {
        var name: String
        var namespace: String
        var count: Int32
        var first: Timestamp
        /// `first` and the last write, in seconds since boot (``PodClock``): the 10 minutes and
        /// the 30 s are measured there, whatever NTP does to the wall clock meanwhile.
        var firstSeen: Int64
        var lastSentAt: Int64
        var unsent = false
    }

    let nodeName: String
    var queue: [Pending] = []
    var aggregates: [String: Aggregate] = [:]
    var tokens = 25.0
    var lastRefill = ContinuousClock.now
    public private(set) var dropped = 0

    /// Event times from `clock.wall`, aggregation windows on `clock.sinceBoot`.
    let clock: PodClock

    public init(nodeName: String, clock: PodClock = .system) {
        self.nodeName = nodeName
        self.clock = clock
    }

    /// Records an event about `pod` (`fieldPath` names a container: `spec.containers{name}`).
    public func record(_ pod: Pod, type: String = "Normal", reason: String, message: String, fieldPath: String? = nil) {
        var reference = ObjectReference(kind: "Pod", namespace: pod.metadata.namespace ?? "default", name: pod.metadata.name, uid: pod.metadata.uid, apiVersion: "v1")
        reference.fieldPath = fieldPath
        let key = [pod.metadata.uid ?? "", fieldPath ?? "", type, reason, message].joined(separator: "\u{1F}")
        let now = clock.wall()
        let seen = clock.sinceBoot()
        var event = Event(involvedObject: reference, reason: reason, message: String(message.prefix(1024)), type: type)
        event.source = EventSource(component: "kubelet", host: nodeName)
        event.reportingComponent = "kubelet"
        event.reportingInstance = nodeName
        event.firstTimestamp = now
        event.lastTimestamp = now
        event.count = 1
        if var aggregate = aggregates[key], seen - aggregate.firstSeen < 600 {
            aggregate.count += 1
            aggregate.unsent = true
            aggregates[key] = aggregate
            // The count is written at most every 30 s.
            guard seen - aggregate.lastSentAt >= 30 else { return }
            event.metadata = ObjectMeta(name: aggregate.name, namespace: aggregate.namespace)
            event.firstTimestamp = aggregate.first
            event.count = aggregate.count
        } else {
            let name = "\(pod.metadata.name ?? "pod").\(Self.suffix())"
            event.metadata = ObjectMeta(name: name, namespace: pod.metadata.namespace ?? "default")
            aggregates[key] = Aggregate(name: name, namespace: pod.metadata.namespace ?? "default", count: 1, first: now, firstSeen: seen, lastSentAt: seen)
        }
        if queue.count >= 200 {
            queue.removeFirst()
            dropped += 1
        }
        queue.append(Pending(event: event, key: key))
        if aggregates.count > 2000 { aggregates = aggregates.filter { seen - $0.value.firstSeen < 600 } }
    }

    static func suffix() -> String {
        let nanoseconds = Timestamp.now().seconds * 1_000_000_000 + Int64(Timestamp.now().nanoseconds)
        return String(nanoseconds, radix: 16) + String(Int.random(in: 0..<4096), radix: 16)
    }

    /// Sends what is queued, as far as the rate allows; false when the API could not be reached.
    func deliver(client: KubeAPIClient) async -> Bool {
        let elapsed = ContinuousClock.now - lastRefill
        tokens = min(25, tokens + Double(elapsed.components.seconds) / 2)
        if elapsed >= .seconds(2) { lastRefill = .now }
        while let next = queue.first, tokens >= 1 {
            queue.removeFirst()
            tokens -= 1
            do {
                if (next.event.count ?? 1) > 1 {
                    let patch: JSONValue = ["count": .integer(Int64(next.event.count ?? 1)), "lastTimestamp": .string(next.event.lastTimestamp?.description ?? "")]
                    do {
                        _ = try await client.mergePatch(Event.self, namespace: next.event.metadata.namespace, name: next.event.metadata.name ?? "", patch: patch)
                    } catch where error.statusCode == 404 {
                        _ = try await client.create(next.event)
                    }
                } else {
                    _ = try await client.create(next.event)
                }
                aggregates[next.key]?.lastSentAt = clock.sinceBoot()
                aggregates[next.key]?.unsent = false
            } catch {
                if error.statusCode == nil {
                    dropped += queue.count + 1
                    queue.removeAll()
                    return false
                }
                dropped += 1
            }
        }
        return true
    }

    /// Events waiting to be sent.
    var queued: Int { queue.count }
}

/// Delivers recorded events in the background.
public struct PodEventService: Service {
    let recorder: PodEventRecorder
    let client: @Sendable () -> KubeAPIClient?

    public init(recorder: PodEventRecorder, client: @escaping @Sendable () -> KubeAPIClient?) {
        self.recorder = recorder
        self.client = client
    }

    public func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            if let client = client() { _ = await recorder.deliver(client: client) }
            for _ in 0..<10 {
                try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .milliseconds(200)) }
                if Task.isShuttingDownGracefully || Task.isCancelled { break }
                if await recorder.queued > 0 { break }
            }
        }
    }
}
