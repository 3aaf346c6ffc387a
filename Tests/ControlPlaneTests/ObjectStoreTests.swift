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

    static func lease(_ name: String, holder: String, renewTime: String) -> JSONValue {
        ["apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": ["name": .string(name), "namespace": "kube-node-lease"],
         "spec": ["holderIdentity": .string(holder), "leaseDurationSeconds": 40, "renewTime": .string(renewTime)]]
    }

    static func renewTime(_ second: Int) -> String { "2026-12-04T10:\(String(format: "%02d", second / 60 % 60)):\(String(format: "%02d", second % 60)).000000Z" }

    /// Lease renewals are served from memory and not written until a flush; a crash before it
    /// loses them but no revision: the store reopens above every one a client saw.
    @Test func leaseRenewalsWaitInMemoryAndTheStoreReopensAboveEveryRevision() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("store-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let path = directory.appendingPathComponent("state.db").path
        let store = try ObjectStore(path: path, feedCapacity: 1000, defersReconstructibleChanges: true)
        _ = try store.create(.leases, namespace: "kube-node-lease", name: "pi", object: Self.lease("pi", holder: "pi", renewTime: Self.renewTime(0)))
        let subscription = try store.watch(.leases, namespace: nil, after: store.currentRevision)
        var seen: [Int64] = []
        for second in 1...200 {
            let renewed = try store.update(.leases, namespace: "kube-node-lease", name: "pi") { current in
                var next = current
                next.set(["spec", "renewTime"], .string(Self.renewTime(second)))
                return next
            }
            seen.append(Int64(renewed.string(at: ["metadata", "resourceVersion"]) ?? "") ?? 0)
        }
        #expect(seen == seen.sorted() && Set(seen).count == seen.count, "revisions increase")
        #expect(store.pendingChanges == 1)
        #expect(try store.get(.leases, namespace: "kube-node-lease", name: "pi")?.string(at: ["spec", "renewTime"]) == Self.renewTime(200))
        #expect(try store.list(.leases, namespace: nil).items.first?.string(at: ["spec", "renewTime"]) == Self.renewTime(200))
        var changes = subscription.changes.makeAsyncIterator()
        var watched: [Int64] = []
        while watched.count < 200, let change = await changes.next() { watched.append(change.revision) }
        #expect(watched == seen, "watchers see every renewal")

        // Another reader of the file (a restart after a crash) still has the created lease…
        let crashed = try ObjectStore(path: path)
        #expect(try crashed.get(.leases, namespace: "kube-node-lease", name: "pi")?.string(at: ["spec", "renewTime"]) == Self.renewTime(0))
        // …and starts above every revision handed out, so no client sees one twice.
        #expect(crashed.currentRevision > seen.last!, "above every revision handed out: a watcher at the last one gets 410 Gone")
        let next = try crashed.create(.configMaps, namespace: "default", name: "after-crash", object: Self.configMap("after-crash", "v"))
        #expect((Int64(next.string(at: ["metadata", "resourceVersion"]) ?? "") ?? 0) > seen.last!)

        // A change that is not a renewal (a new holder) is written at once, with what was pending.
        _ = try store.update(.leases, namespace: "kube-node-lease", name: "pi") { current in
            var next = current
            next.set(["spec", "holderIdentity"], "other")
            return next
        }
        #expect(store.pendingChanges == 0)
        let reread = try ObjectStore(path: path)
        #expect(try reread.get(.leases, namespace: "kube-node-lease", name: "pi")?.string(at: ["spec", "holderIdentity"]) == "other")

        // A flush writes the renewals kept in memory.
        _ = try store.update(.leases, namespace: "kube-node-lease", name: "pi") { current in
            var next = current
            next.set(["spec", "renewTime"], .string(Self.renewTime(300)))
            return next
        }
        #expect(try ObjectStore(path: path).get(.leases, namespace: "kube-node-lease", name: "pi")?.string(at: ["spec", "renewTime"]) == Self.renewTime(200))
        #expect(try store.flush() == 1)
        #expect(try ObjectStore(path: path).get(.leases, namespace: "kube-node-lease", name: "pi")?.string(at: ["spec", "renewTime"]) == Self.renewTime(300))
    }

    static func renew(_ store: ObjectStore, _ name: String, namespace: String = "kube-node-lease", second: Int) throws -> Int64 {
        let renewed = try store.update(.leases, namespace: namespace, name: name) { current in
            var next = current
            next.set(["spec", "renewTime"], .string(Self.renewTime(second)))
            return next
        }
        return Int64(renewed.string(at: ["metadata", "resourceVersion"]) ?? "") ?? 0
    }

    /// Another process writing the store (`token create` beside the server) stays above every
    /// revision the server handed out from memory, across the server's new reservations; and a
    /// flush never writes over a row that process changed.
    @Test func anotherWriterNeverReusesARevisionNorLosesItsWrite() throws {
        let (_, path) = try Self.temporaryStore()
        let server = try ObjectStore(path: path, defersReconstructibleChanges: true, reservationBlock: 10)
        _ = try server.create(.leases, namespace: "kube-node-lease", name: "pi", object: Self.lease("pi", holder: "pi", renewTime: Self.renewTime(0)))
        let cli = try ObjectStore(path: path)
        var handedOut: Int64 = 0
        for second in 1...25 { handedOut = try Self.renew(server, "pi", second: second) }
        let written = try cli.create(.configMaps, namespace: "default", name: "from-cli", object: Self.configMap("from-cli", "v"))
        #expect((Int64(written.string(at: ["metadata", "resourceVersion"]) ?? "") ?? 0) > handedOut)
        // The server goes on above the other process's revision.
        #expect(try Self.renew(server, "pi", second: 26) > (Int64(written.string(at: ["metadata", "resourceVersion"]) ?? "") ?? 0))

        // The other process changes the lease for real while a renewal waits in the server.
        _ = try cli.update(.leases, namespace: "kube-node-lease", name: "pi") { current in
            var next = current
            next.set(["spec", "holderIdentity"], "replacement")
            return next
        }
        #expect(try server.get(.leases, namespace: "kube-node-lease", name: "pi")?.string(at: ["spec", "holderIdentity"]) == "replacement")
        _ = try Self.renew(server, "pi", second: 27)
        _ = try cli.update(.leases, namespace: "kube-node-lease", name: "pi") { current in
            var next = current
            next.set(["spec", "holderIdentity"], "third")
            return next
        }
        try server.flush()
        #expect(try ObjectStore(path: path).get(.leases, namespace: "kube-node-lease", name: "pi")?.string(at: ["spec", "holderIdentity"]) == "third",
                "the flush left the other process's write alone")
        // Leases outside kube-node-lease (leader election) are always written.
        _ = try server.create(.leases, namespace: "kube-system", name: "leader", object: Self.lease("leader", holder: "a", renewTime: Self.renewTime(0)))
        _ = try Self.renew(server, "leader", namespace: "kube-system", second: 1)
        #expect(server.pendingChanges == 0)
    }

    /// Node status heartbeats wait in memory; a condition that changes is written at once.
    @Test func nodeHeartbeatsWaitButConditionChangesAreWritten() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("store-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let path = directory.appendingPathComponent("state.db").path
        let store = try ObjectStore(path: path, defersReconstructibleChanges: true)
        func node(_ status: String, _ beat: Int) -> JSONValue {
            ["apiVersion": "v1", "kind": "Node", "metadata": ["name": "pi"],
             "status": ["conditions": [["type": "Ready", "status": .string(status), "reason": "KubeletReady",
                                        "lastHeartbeatTime": .string(Self.renewTime(beat)), "lastTransitionTime": .string(Self.renewTime(0))]]]]
        }
        _ = try store.create(.nodes, namespace: "", name: "pi", object: node("True", 0))
        func status(_ value: JSONValue) -> (JSONValue) -> JSONValue? {
            { current in
                var next = current
                next.set(["status"], value[path: ["status"]])
                return next
            }
        }
        _ = try store.update(.nodes, namespace: "", name: "pi", change: status(node("True", 10)))
        #expect(store.pendingChanges == 1)
        _ = try store.update(.nodes, namespace: "", name: "pi", change: status(node("False", 20)))
        #expect(store.pendingChanges == 0)
        let written = try ObjectStore(path: path).get(.nodes, namespace: "", name: "pi").map { KubeJSON.serialize($0) } ?? []
        #expect(String(decoding: written, as: UTF8.self).contains(#""status":"False""#))
        // Other resources are never kept back.
        _ = try store.create(.configMaps, namespace: "default", name: "c", object: Self.configMap("c", "1"))
        _ = try store.update(.configMaps, namespace: "default", name: "c") { _ in Self.configMap("c", "2") }
        #expect(store.pendingChanges == 0)
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
