import Foundation
import IotkubeTestSupport
import KubeModel
import Testing

@testable import ControlPlane

/// A node's own credential tries what a hostile node would, over real HTTPS: read Secrets
/// through pods it makes, give itself the control-plane role, taints or a pod range, or
/// change another node. NodeRestriction refuses each with kube-apiserver's 403.
@Suite(.ownThread, .serialized)
struct NodeRestrictionTests {
    static let nodeManifest = #"{"apiVersion":"v1","kind":"Node","metadata":{"name":"pi1","labels":{"kubernetes.io/hostname":"pi1","kubernetes.io/os":"linux","beta.kubernetes.io/arch":"arm64","iotkube.io/board-model":"pi4"}},"spec":{"taints":[{"key":"iotkube.io/new","effect":"NoSchedule"}]}}"#

    /// A pod in kube-system bound to pi1; `mirror` adds the annotation and the Node owner.
    static func pod(_ name: String, nodeUID: String?, extraSpec: String = "", extraContainer: String = "") -> String {
        let metadata = nodeUID.map {
            #","annotations":{"kubernetes.io/config.mirror":"abc"},"ownerReferences":[{"apiVersion":"v1","kind":"Node","name":"pi1","uid":"\#($0)","controller":true}]"#
        } ?? ""
        return #"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"\#(name)"\#(metadata)},"spec":{"nodeName":"pi1"\#(extraSpec),"containers":[{"name":"c","image":"busybox"\#(extraContainer)}]}}"#
    }

    @Test(.enabled(if: toolAvailable("curl"), "curl is not installed"))
    func aNodeCannotReadSecretsThroughPodsItCreates() throws {
        let server = try ServerProcess()
        let admin = try ClusterCaller.admin(server)
        let node = try ClusterCaller.node(server, "pi1")
        #expect(try admin.post("/api/v1/namespaces/kube-system/secrets", #"{"apiVersion":"v1","kind":"Secret","metadata":{"name":"cloud-key"},"stringData":{"key":"s3cr3t"}}"#).status == 201)
        #expect(try admin.post("/api/v1/namespaces/kube-system/configmaps", #"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"settings"},"data":{"a":"1"}}"#).status == 201)
        let registered = try node.post("/api/v1/nodes", Self.nodeManifest)
        #expect(registered.status == 201, "\(registered.body)")
        let nodeUID = try #require(registered.json?.string(at: ["metadata", "uid"]))

        // The attack of issue 16: a plain pod naming the Secret, then read it.
        let plain = try node.post("/api/v1/namespaces/kube-system/pods", Self.pod("thief", nodeUID: nil, extraContainer: #","envFrom":[{"secretRef":{"name":"cloud-key"}}]"#))
        #expect(plain.status == 403, "\(plain.body)")
        #expect(plain.message == #"pods "thief" is forbidden: pod does not have "kubernetes.io/config.mirror" annotation, node "pi1" can only create mirror pods"#)
        let secret = try node.get("/api/v1/namespaces/kube-system/secrets/cloud-key")
        #expect(secret.status == 403 && !secret.body.contains("czNjcjN0"), "\(secret.body)")

        // Mirror pods may not name what the node could then read.
        let refusals: [(String, String, String)] = [
            ("env", "", #","envFrom":[{"secretRef":{"name":"cloud-key"}}]"#),
            ("volume", #","volumes":[{"name":"v","secret":{"secretName":"cloud-key"}}]"#, ""),
            ("pull", #","imagePullSecrets":[{"name":"cloud-key"}]"#, ""),
            ("projected", #","volumes":[{"name":"v","projected":{"sources":[{"secret":{"name":"cloud-key"}}]}}]"#, ""),
        ]
        for (name, spec, container) in refusals {
            let answer = try node.post("/api/v1/namespaces/kube-system/pods", Self.pod("mirror-\(name)", nodeUID: nodeUID, extraSpec: spec, extraContainer: container))
            #expect(answer.status == 403 && answer.message.hasSuffix(#"node "pi1" can not create pods that reference secrets"#), "\(name): \(answer.body)")
        }
        let others: [(String, String, String)] = [
            ("configmap", #","volumes":[{"name":"v","configMap":{"name":"settings"}}]"#, "reference configmaps"),
            ("account", #","serviceAccountName":"default""#, "reference a service account"),
            ("claim", #","volumes":[{"name":"v","persistentVolumeClaim":{"claimName":"data"}}]"#, "reference persistentvolumeclaims"),
            ("token", #","volumes":[{"name":"v","projected":{"sources":[{"serviceAccountToken":{"path":"t"}}]}}]"#, "use service account token projections"),
            ("bundle", #","volumes":[{"name":"v","projected":{"sources":[{"clusterTrustBundle":{"name":"b","path":"t"}}]}}]"#, "reference clustertrustbundles"),
        ]
        for (name, spec, why) in others {
            let answer = try node.post("/api/v1/namespaces/kube-system/pods", Self.pod("mirror-\(name)", nodeUID: nodeUID, extraSpec: spec))
            #expect(answer.status == 403 && answer.message.hasSuffix(why), "\(name): \(answer.body)")
        }
        let unowned = try node.post("/api/v1/namespaces/kube-system/pods", Self.pod("unowned", nodeUID: nil).replacingOccurrences(
            of: #""name":"unowned""#, with: #""name":"unowned","annotations":{"kubernetes.io/config.mirror":"abc"}"#))
        #expect(unowned.status == 403 && unowned.message.hasSuffix("can only create pods with an owner reference set to itself"), "\(unowned.body)")
        let forged = try node.post("/api/v1/namespaces/kube-system/pods", Self.pod("forged", nodeUID: "not-the-uid"))
        #expect(forged.status == 403 && forged.message.contains("UID mismatch"), "\(forged.body)")
        #expect(try node.get("/api/v1/namespaces/kube-system/secrets/cloud-key").status == 403)
        #expect(try node.get("/api/v1/namespaces/kube-system/configmaps/settings").status == 403)
        #expect(try admin.get("/api/v1/namespaces/kube-system/pods").json?[path: ["items"]] == .array([]))

        // A clean mirror pod is fine; the node updates its status and deletes it.
        let mirror = try node.post("/api/v1/namespaces/kube-system/pods", Self.pod("sensor-pi1", nodeUID: nodeUID, extraSpec: #","volumes":[{"name":"scratch","emptyDir":{}}]"#))
        #expect(mirror.status == 201, "\(mirror.body)")
        #expect(try node.mergePatch("/api/v1/namespaces/kube-system/pods/sensor-pi1/status", #"{"status":{"phase":"Running"}}"#).status == 200)
        // The UID a board sends with a status is kube-apiserver's precondition: the status of an
        // earlier pod of that name never lands on this one (409), the right UID is fine.
        let mirrorUID = try #require(mirror.json?.string(at: ["metadata", "uid"]))
        let stale = try node.mergePatch("/api/v1/namespaces/kube-system/pods/sensor-pi1/status", #"{"metadata":{"uid":"an-earlier-pod"},"status":{"phase":"Failed"}}"#)
        #expect(stale.status == 409 && stale.message == #"Operation cannot be fulfilled on pods "sensor-pi1": Precondition failed: UID in precondition: an-earlier-pod, UID in object meta: \#(mirrorUID)"#, "\(stale.body)")
        #expect(try node.mergePatch("/api/v1/namespaces/kube-system/pods/sensor-pi1/status", #"{"metadata":{"uid":"\#(mirrorUID)"},"status":{"phase":"Running"}}"#).status == 200)
        #expect(try admin.get("/api/v1/namespaces/kube-system/pods/sensor-pi1").json?.string(at: ["status", "phase"]) == "Running")
        #expect(try node.mergePatch("/api/v1/namespaces/kube-system/pods/sensor-pi1", #"{"metadata":{"labels":{"a":"b"}}}"#).status == 403)
        #expect(try node.call("DELETE", "/api/v1/namespaces/kube-system/pods/sensor-pi1?gracePeriodSeconds=0").status == 200)

        // Pods of another node stay out of reach.
        #expect(try admin.post("/api/v1/namespaces/default/pods", #"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"elsewhere"},"spec":{"nodeName":"pi2","containers":[{"name":"c","image":"busybox"}]}}"#).status == 201)
        #expect(try node.mergePatch("/api/v1/namespaces/default/pods/elsewhere/status", #"{"status":{"phase":"Failed"}}"#).status == 403)
        #expect(try node.call("DELETE", "/api/v1/namespaces/default/pods/elsewhere").status == 403)
        #expect(try admin.get("/api/v1/namespaces/default/pods/elsewhere").json?.string(at: ["status", "phase"]) == "Pending")

        // The status of a pod deleted meanwhile is kube-apiserver's 404, not a refusal: a board
        // writing a final status must not take it for an API that turned it away. Reads and
        // deletes of a missing pod stay refused (they would reach a pod created meanwhile).
        #expect(try admin.call("DELETE", "/api/v1/namespaces/default/pods/elsewhere?gracePeriodSeconds=0").status == 200)
        let gone = try node.mergePatch("/api/v1/namespaces/default/pods/elsewhere/status", #"{"status":{"phase":"Failed"}}"#)
        #expect(gone.status == 404 && gone.message == #"pods "elsewhere" not found"#, "\(gone.body)")
        #expect(try node.call("DELETE", "/api/v1/namespaces/default/pods/elsewhere").status == 403)
        #expect(try node.get("/api/v1/namespaces/default/pods/elsewhere").status == 403)

    }

    @Test(.enabled(if: toolAvailable("curl"), "curl is not installed"))
    func aNodeCannotSteerWorkloadsToItself() throws {
        let server = try ServerProcess()
        let admin = try ClusterCaller.admin(server)
        let node = try ClusterCaller.node(server, "pi1")
        let crowned = try node.post("/api/v1/nodes", Self.nodeManifest.replacingOccurrences(of: #""iotkube.io/board-model":"pi4""#, with: #""node-role.kubernetes.io/control-plane":"""#))
        #expect(crowned.status == 403, "\(crowned.body)")
        #expect(crowned.message == #"nodes "pi1" is forbidden: node "pi1" is not allowed to set the following labels: node-role.kubernetes.io/control-plane"#)
        let withRange = try node.post("/api/v1/nodes", Self.nodeManifest.replacingOccurrences(of: #""spec":{"#, with: #""spec":{"podCIDR":"10.42.7.0/24","#))
        #expect(withRange.status == 403, "\(withRange.body)")
        // Registration with the kubelet's labels and taints is fine.
        #expect(try node.post("/api/v1/nodes", Self.nodeManifest).status == 201)
        #expect(try admin.post("/api/v1/nodes", #"{"apiVersion":"v1","kind":"Node","metadata":{"name":"pi2"}}"#).status == 201)

        let attacks: [(String, String)] = [
            (#"{"metadata":{"labels":{"node-role.kubernetes.io/control-plane":""}}}"#, #"nodes "pi1" is forbidden: is not allowed to modify labels: node-role.kubernetes.io/control-plane"#),
            (#"{"metadata":{"labels":{"node-restriction.kubernetes.io/secure":"yes"}}}"#, "is not allowed to modify labels: node-restriction.kubernetes.io/secure"),
            (#"{"metadata":{"labels":{"example.k8s.io/gpu":"true"}}}"#, "is not allowed to modify labels: example.k8s.io/gpu"),
            (#"{"spec":{"taints":null}}"#, #"node "pi1" is not allowed to modify taints"#),
            (#"{"spec":{"taints":[{"key":"iotkube.io/new","effect":"NoSchedule"},{"key":"x","effect":"NoExecute"}]}}"#, "is not allowed to modify taints"),
            (#"{"spec":{"podCIDR":"10.99.0.0/16","podCIDRs":["10.99.0.0/16"]}}"#, #"node "pi1" is not allowed to modify spec.podCIDR"#),
            (#"{"spec":{"configSource":{"configMap":{"name":"c","namespace":"kube-system","kubeletConfigKey":"k"}}}}"#, "configSource"),
            (#"{"metadata":{"ownerReferences":[{"apiVersion":"v1","kind":"Node","name":"pi2","uid":"x"}]}}"#, "ownerReferences"),
        ]
        for (patch, message) in attacks {
            let answer = try node.mergePatch("/api/v1/nodes/pi1", patch)
            #expect(answer.status == 403 && answer.message.hasSuffix(message), "\(patch): \(answer.body)")
        }
        #expect(try node.mergePatch("/api/v1/nodes/pi2", #"{"metadata":{"labels":{"x":"y"}}}"#).status == 403)
        #expect(try node.mergePatch("/api/v1/nodes/pi2/status", #"{"status":{"phase":"Running"}}"#).status == 403)

        // What a kubelet does still works: its status, its own and its allowed labels, a providerID once.
        #expect(try node.mergePatch("/api/v1/nodes/pi1/status", #"{"status":{"conditions":[{"type":"Ready","status":"True"}]}}"#).status == 200)
        let allowed = try node.mergePatch("/api/v1/nodes/pi1", #"{"metadata":{"labels":{"topology.kubernetes.io/zone":"barn","node.kubernetes.io/instance-type":"pi4","iotkube.io/site":"farm"}},"spec":{"providerID":"iotkube://pi1"}}"#)
        #expect(allowed.status == 200, "\(allowed.body)")
        #expect(try node.mergePatch("/api/v1/nodes/pi1", #"{"spec":{"providerID":"iotkube://other"}}"#).status == 403)

        // Nothing refused got through.
        let stored = try #require(try admin.get("/api/v1/nodes/pi1").json)
        let labels = NodeRestriction.labels(stored)
        #expect(labels["node-role.kubernetes.io/control-plane"] == nil && labels["kubernetes.io/hostname"] == "pi1" && labels["iotkube.io/site"] == "farm")
        #expect(stored.string(at: ["spec", "podCIDR"]) != "10.99.0.0/16")
        #expect(stored[path: ["spec", "taints"]].map { if case .array(let taints) = $0 { taints.count } else { 0 } } == 1)
        #expect(stored.string(at: ["spec", "providerID"]) == "iotkube://pi1")
        #expect(try admin.get("/api/v1/nodes/pi2").json.map(NodeRestriction.labels) == [:])
    }
}
