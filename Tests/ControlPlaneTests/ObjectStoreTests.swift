import Foundation
import KubeModel
import IotkubeTestSupport
import Testing

@testable import ControlPlane

/// The store: revisions, optimistic concurrency, the watch feed, durability across reopen.
@Suite(.ownThread)
struct ObjectStoreTests {
    static func temporaryStore(feedCapacity: Int = 100) throws -> (ObjectStore, String) {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("store-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let path = directory.appendingPathComponent("state.db").path
        return (try ObjectStore(path: path, feedCapacity: feedCapacity), path)
    }

    static func configMap(_ name: String, _ value: String) -> JSONValue {
        ["apiVersion": "v1", "kind": "ConfigMap", "metadata": ["name": .string(name), "namespace": "default"], "data": ["k": .string(value)]]
    }

    @Test func revisionsIncreaseAndConflictsAreDetected() throws {
        let (store, _) = try Self.temporaryStore()
        let created = try store.create(.configMaps, namespace: "default", name: "a", object: Self.configMap("a", "1"))
        let firstVersion = try #require(created.string(at: ["metadata", "resourceVersion"]))
        #expect(created.string(at: ["metadata", "uid"])?.count == 36)
        #expect(created.int64(at: ["metadata", "generation"]) == 1)
        let updated = try store.update(.configMaps, namespace: "default", name: "a", expectedRevision: firstVersion) { current in
            var next = current
            next.set(["data", "k"], "2")
            return next
        }
        #expect(Int64(updated.string(at: ["metadata", "resourceVersion"]) ?? "")! > Int64(firstVersion)!)
        #expect(updated.string(at: ["metadata", "uid"]) == created.string(at: ["metadata", "uid"]))
        #expect {
            try store.update(.configMaps, namespace: "default", name: "a", expectedRevision: firstVersion) { $0 }
        } throws: { error in
            (error as? APIError)?.code == 409 && (error as? APIError)?.reason == "Conflict"
        }
        #expect(throws: APIError.self) { try store.create(.configMaps, namespace: "default", name: "a", object: Self.configMap("a", "x")) }
        #expect(throws: APIError.self) { try store.delete(.configMaps, namespace: "default", name: "missing") }
    }

    @Test func watchReplaysFromARevisionAndReportsGone() async throws {
        let (store, _) = try Self.temporaryStore(feedCapacity: 3)
        let start = store.currentRevision
        for index in 0..<2 { _ = try store.create(.configMaps, namespace: "default", name: "c\(index)", object: Self.configMap("c\(index)", "v")) }
        let subscription = try store.watch(.configMaps, namespace: "default", after: start)
        _ = try store.delete(.configMaps, namespace: "default", name: "c0")
        var received: [(WatchEventType, String)] = []
        for await change in subscription.changes {
            received.append((change.type, change.object.string(at: ["metadata", "name"]) ?? ""))
            if received.count == 3 { break }
        }
        store.cancel(subscription)
        #expect(received.map(\.0) == [.added, .added, .deleted])
        #expect(received.map(\.1) == ["c0", "c1", "c0"])
        for index in 2..<6 { _ = try store.create(.configMaps, namespace: "default", name: "c\(index)", object: Self.configMap("c\(index)", "v")) }
        #expect {
            try store.watch(.configMaps, namespace: nil, after: start)
        } throws: { error in
            (error as? APIError)?.code == 410
        }
    }

    @Test func objectsSurviveReopening() throws {
        let (store, path) = try Self.temporaryStore()
        _ = try store.create(.configMaps, namespace: "default", name: "kept", object: Self.configMap("kept", "v"))
        let revision = store.currentRevision
        let reopened = try ObjectStore(path: path)
        #expect(reopened.currentRevision == revision)
        #expect(try reopened.get(.configMaps, namespace: "default", name: "kept")?.string(at: ["data", "k"]) == "v")
        #expect(try reopened.list(.configMaps, namespace: nil).items.count == 1)
    }
}
