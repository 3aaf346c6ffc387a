import KubeModel
import Synchronization

/// The latest usage samples of nodes and pods (metrics.k8s.io), pushed by agents with their
/// heartbeats. Kept in memory only: samples are replaced every few seconds and are worthless
/// after a restart, so they never touch the disk.
public final class MetricsStore: Sendable {
    /// Samples older than this are no longer served (the node stopped reporting).
    let maximumAge: Int64
    private let samples = Mutex<[String: JSONValue]>([:])

    public init(maximumAgeSeconds: Int64 = 300) { maximumAge = maximumAgeSeconds }

    private static func key(_ resource: ResourceType, _ namespace: String, _ name: String) -> String {
        "\(resource.kind)/\(namespace)/\(name)"
    }

    func put(_ resource: ResourceType, namespace: String, name: String, object: JSONValue) {
        samples.withLock { $0[Self.key(resource, namespace, name)] = object }
    }

    func get(_ resource: ResourceType, namespace: String, name: String, now: Timestamp) -> JSONValue? {
        samples.withLock { $0[Self.key(resource, namespace, name)] }.flatMap { fresh($0, now: now) ? $0 : nil }
    }

    func list(_ resource: ResourceType, namespace: String?, now: Timestamp) -> [JSONValue] {
        let prefix = namespace.map { "\(resource.kind)/\($0)/" } ?? "\(resource.kind)/"
        return samples.withLock { samples in
            samples.filter { $0.key.hasPrefix(prefix) }.sorted { $0.key < $1.key }.map(\.value)
        }.filter { fresh($0, now: now) }
    }

    private func fresh(_ sample: JSONValue, now: Timestamp) -> Bool {
        guard let text = sample.string(at: ["timestamp"]), let time = try? Timestamp(rfc3339: text) else { return false }
        return now.seconds - time.seconds <= maximumAge
    }
}
