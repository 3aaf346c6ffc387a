import Foundation
import KubeModel
import IotkubeTestSupport
import Testing

/// Hostile objects against the workload controllers and the garbage collector: each was found
/// to crash the server, loop it, or let a node reach further than the node rules allow.
@Suite(.ownThread, .serialized)
struct WorkloadAttackTests {
    @Test(.enabled(if: toolAvailable("kubectl") && toolAvailable("curl"), "needs kubectl and curl"))
    func hostileWorkloadObjectsNeitherCrashNorLoopTheServer() throws {
        let server = try ServerProcess(arguments: ["--node-monitor-grace-period", "3600"])
        let kubelet = try SimulatedKubelet(server: server, node: "sim-1")
        kubelet.start()
        defer { kubelet.stop() }
        func ok(_ arguments: [String], input: String? = nil, sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
            let result = try server.kubectl(arguments, input: input)
            #expect(result.status == 0, "kubectl \(arguments.joined(separator: " ")): \(result.output)", sourceLocation: sourceLocation)
            return result.output
        }
        _ = try ok(["create", "deployment", "web", "--image=busybox:1.36", "--replicas=1"])
        #expect(try ok(["rollout", "status", "deployment/web", "--timeout=60s"]).contains("successfully rolled out"))

        // A revision annotation at the top of Int64: the next revision must not overflow.
        let replicaSet = try ok(["get", "rs", "-l", "app=web", "-o", "name"]).trimmingCharacters(in: .whitespacesAndNewlines)
        _ = try ok(["annotate", replicaSet, "--overwrite", "deployment.kubernetes.io/revision=9223372036854775807"])
        _ = try ok(["set", "image", "deployment/web", "busybox=busybox:1.37"])
        #expect(try ok(["rollout", "status", "deployment/web", "--timeout=60s"]).contains("successfully rolled out"))
        #expect(server.process.isRunning, "the server died: \(server.serverLog.suffix(2000))")

        // A status with counts no controller could have written is refused (they feed arithmetic).
        let admin = try ClusterCaller.admin(server)
        let forged = try admin.mergePatch("/apis/apps/v1/namespaces/default/deployments/web/status",
                                          #"{"status":{"replicas":-2147483648,"updatedReplicas":1}}"#)
        #expect(forged.status == 422 && forged.message.contains("status.replicas"), "\(forged.body)")
        #expect(server.process.isRunning)

        // A template without metadata (a selector on an absent label) rolls out once, with no
        // endless new replica sets.
        let bare = """
            apiVersion: apps/v1
            kind: Deployment
            metadata: {name: bare}
            spec:
              replicas: 1
              selector: {matchExpressions: [{key: never-set, operator: DoesNotExist}]}
              template:
                spec: {containers: [{name: c, image: "busybox:1.36"}]}
            """
        _ = try ok(["create", "-f", "-"], input: bare)
        #expect(try ok(["rollout", "status", "deployment/bare", "--timeout=60s"]).contains("successfully rolled out"))
        Thread.sleep(forTimeInterval: 2)
        #expect(try ok(["get", "deployment", "bare", "-o", "jsonpath={.status.collisionCount}"]).isEmpty)
        let bareSets = try ok(["get", "rs", "-o", "jsonpath={range .items[*]}{.metadata.ownerReferences[0].name}{\"\\n\"}{end}"]).split(separator: "\n").filter { $0 == "bare" }
        #expect(bareSets.count == 1, "\(bareSets)")

        // An owner of a kind the collector does not follow (an Event) is not taken as gone.
        _ = try ok(["create", "configmap", "owner-target", "--from-literal=a=b"])
        let eventUID = try ok(["get", "events", "-o", "jsonpath={.items[0].metadata.uid}"])
        let eventName = try ok(["get", "events", "-o", "jsonpath={.items[0].metadata.name}"])
        _ = try ok(["patch", "configmap", "owner-target", "--type=merge", "-p",
                    #"{"metadata":{"ownerReferences":[{"apiVersion":"v1","kind":"Event","name":"\#(eventName)","uid":"\#(eventUID)"}]}}"#])
        // A self-owned object deleted in the foreground does not wait for itself.
        _ = try ok(["create", "configmap", "selfish", "--from-literal=a=b"])
        let selfUID = try ok(["get", "configmap", "selfish", "-o", "jsonpath={.metadata.uid}"])
        _ = try ok(["patch", "configmap", "selfish", "--type=merge", "-p",
                    #"{"metadata":{"ownerReferences":[{"apiVersion":"v1","kind":"ConfigMap","name":"selfish","uid":"\#(selfUID)","blockOwnerDeletion":true}]}}"#])
        _ = try ok(["delete", "configmap", "selfish", "--cascade=foreground", "--timeout=30s"])
        #expect(try server.kubectl(["get", "configmap", "selfish"]).output.contains("NotFound"))
        Thread.sleep(forTimeInterval: 2)
        #expect(try server.kubectl(["get", "configmap", "owner-target"]).status == 0, "the collector deleted an object whose owner it does not follow")
        #expect(server.process.isRunning)
    }

    @Test(.enabled(if: toolAvailable("curl"), "curl is not installed"))
    func aNodeCannotHangOrTriggerCollectionThroughItsLease() throws {
        let server = try ServerProcess()
        let node = try ClusterCaller.node(server, "pi1")
        let lease = { (metadata: String) in
            #"{"apiVersion":"coordination.k8s.io/v1","kind":"Lease","metadata":{"name":"pi1","namespace":"kube-node-lease"\#(metadata)},"spec":{"holderIdentity":"pi1"}}"#
        }
        let finalized = try node.post("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases", lease(#","finalizers":["example.com/hold"]"#))
        #expect(finalized.status == 403 && finalized.message.contains("finalizers"), "\(finalized.body)")
        let owned = try node.post("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases",
                                  lease(#","ownerReferences":[{"apiVersion":"v1","kind":"Namespace","name":"default","uid":"x","blockOwnerDeletion":true}]"#))
        #expect(owned.status == 403 && owned.message.contains("own Node"), "\(owned.body)")
        // The kubelet's own lease, owned by its Node, is fine.
        let plain = try node.post("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases",
                                  lease(#","ownerReferences":[{"apiVersion":"v1","kind":"Node","name":"pi1","uid":"x"}]"#))
        #expect(plain.status == 201, "\(plain.body)")
    }
}
