import Foundation
import IotkubeTestSupport
import KubeModel
import Testing

@testable import ControlPlane

/// The server keeps Lease renewals and Node heartbeats in memory (an SD card is not written
/// 500 times every 10 s): a real server process, a node's own credentials, the store file read
/// beside it, a SIGKILL and a SIGTERM.
@Suite(.ownThread, .enabled(if: toolAvailable("kubectl") && toolAvailable("curl"), "needs kubectl and curl"))
struct ReconstructibleWriteTests {
    static let leasePath = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/pi"

    static func renewTime(_ second: Int) -> String { "2026-12-04T11:00:\(String(format: "%02d", second % 60)).000000Z" }

    /// What the store file itself holds (as a restart would read it).
    static func storedLease(_ server: ServerProcess) throws -> JSONValue? {
        try ObjectStore(path: ClusterFiles(directory: server.directory.path).storePath).get(.leases, namespace: "kube-node-lease", name: "pi")
    }

    func renew(_ node: ClusterCaller, _ lease: inout JSONValue, second: Int) throws -> Int {
        lease.set(["spec", "renewTime"], .string(Self.renewTime(second)))
        let answer = try node.call("PUT", Self.leasePath, body: String(decoding: KubeJSON.serialize(lease), as: UTF8.self))
        if answer.status == 200, let renewed = answer.json { lease = renewed }
        return answer.status
    }

    @Test func renewalsAreServedFromMemoryWrittenAtStopAndACrashLosesNoRevision() throws {
        let server = try ServerProcess()
        let node = try ClusterCaller.node(server, "pi")
        let created = try node.post("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases", """
            {"apiVersion":"coordination.k8s.io/v1","kind":"Lease","metadata":{"name":"pi","namespace":"kube-node-lease"},
             "spec":{"holderIdentity":"pi","leaseDurationSeconds":40,"renewTime":"\(Self.renewTime(0))"}}
            """)
        #expect(created.status == 201, "\(created.body)")
        var lease = try #require(created.json)
        var revisions: [Int64] = []
        for second in 1...20 {
            #expect(try renew(node, &lease, second: second) == 200)
            revisions.append(Int64(lease.string(at: ["metadata", "resourceVersion"]) ?? "") ?? 0)
        }
        // The API answers with the last renewal; the file still has the lease as created.
        #expect(try node.get(Self.leasePath).json?.string(at: ["spec", "renewTime"]) == Self.renewTime(20))
        #expect(try Self.storedLease(server)?.string(at: ["spec", "renewTime"]) == Self.renewTime(0))

        // A crash: the renewals are gone, no revision is reused, and the node's next renewal
        // (with the revision it holds) is a conflict it recovers from by reading the lease again.
        server.kill()
        try server.resume()
        let afterCrash = try #require(try node.get(Self.leasePath).json)
        #expect(afterCrash.string(at: ["spec", "renewTime"]) == Self.renewTime(0))
        #expect(try renew(node, &lease, second: 21) == 409)
        lease = afterCrash
        #expect(try renew(node, &lease, second: 22) == 200)
        #expect((Int64(lease.string(at: ["metadata", "resourceVersion"]) ?? "") ?? 0) > revisions.last!, "a revision after the crash is above every one seen")

        // A stop writes what is kept in memory.
        for second in 23...25 { #expect(try renew(node, &lease, second: second) == 200) }
        server.stop()
        #expect(try Self.storedLease(server)?.string(at: ["spec", "renewTime"]) == Self.renewTime(25))
        try server.resume()
        #expect(try node.get(Self.leasePath).json?.string(at: ["spec", "renewTime"]) == Self.renewTime(25))
    }

    @Test func aNodeStatusHeartbeatWaitsAndAConditionChangeIsWritten() throws {
        let server = try ServerProcess()
        let node = try ClusterCaller.node(server, "pi")
        func status(_ ready: String, _ second: Int) -> String {
            """
            {"status":{"conditions":[{"type":"Ready","status":"\(ready)","reason":"KubeletReady","message":"ready",
             "lastHeartbeatTime":"\(Self.renewTime(second).prefix(19))Z","lastTransitionTime":"2026-12-04T10:00:00Z"}]}}
            """
        }
        #expect(try node.post("/api/v1/nodes", #"{"apiVersion":"v1","kind":"Node","metadata":{"name":"pi"}}"#).status == 201)
        #expect(try node.mergePatch("/api/v1/nodes/pi/status", status("True", 1)).status == 200)
        func stored() throws -> String {
            let node = try ObjectStore(path: ClusterFiles(directory: server.directory.path).storePath).get(.nodes, namespace: "", name: "pi")
            return node.map { String(decoding: KubeJSON.serialize($0), as: UTF8.self) } ?? ""
        }
        #expect(try stored().contains("11:00:01Z"), "the first status is a change: written")
        #expect(try node.mergePatch("/api/v1/nodes/pi/status", status("True", 2)).status == 200)
        #expect(try stored().contains("11:00:01Z"), "a heartbeat alone waits in memory")
        #expect(try node.get("/api/v1/nodes/pi").body.contains("11:00:02Z"))
        #expect(try node.mergePatch("/api/v1/nodes/pi/status", status("False", 3)).status == 200)
        #expect(try stored().contains("11:00:03Z"), "a condition that changes is written at once")
    }
}
