import HTTPServing
import KubeModel

/// The NodeRestriction admission rules of kube-apiserver, applied to writes by a node after the
/// node authorizer let them through: a node creates only mirror pods of its own that use no
/// Secret, ConfigMap, ServiceAccount, ClusterTrustBundle or PersistentVolumeClaim, updates only
/// the status of its pods, and changes only its own Node without steering workloads to itself
/// (labels, taints, pod range; see `NodeRestriction+Node.swift`).
struct NodeRestriction {
    static let mirrorAnnotation = "kubernetes.io/config.mirror"

    let store: ObjectStore
    /// The node the request comes from.
    let node: String

    /// The node an identity speaks for (`system:node:<name>` in `system:nodes`), "" for such a
    /// user without a name; nil for everyone else.
    static func nodeName(of identity: RequestIdentity) -> String? {
        guard identity.groups.contains(Authorizer.nodesGroup), identity.user.hasPrefix(Authorizer.nodeUserPrefix) else { return nil }
        return String(identity.user.dropFirst(Authorizer.nodeUserPrefix.count))
    }

    /// Refuses a create (`old` nil) or update of `new` at `route` that a node may not make.
    func admit(_ route: RequestRoute, old: JSONValue?, new: JSONValue) throws {
        guard !node.isEmpty else { throw refusal(route, new, "could not determine node from user \"\(Authorizer.nodeUserPrefix)\"") }
        switch route.resource {
        case .pods:
            switch route.subresource {
            case nil:
                guard old == nil else { throw refusal(route, new, "unexpected operation \"UPDATE\", node \"\(node)\" can only create and delete mirror pods") }
                try admitMirrorPod(route, new)
            case "status":
                try admitPodStatus(route, old: old, new: new)
            case let other?:
                throw refusal(route, new, "unexpected pod subresource \"\(other)\", only 'status' and 'eviction' are allowed")
            }
        case .nodes:
            try admitNode(route, old: old, new: new)
        case .leases:
            guard route.namespace == "kube-node-lease" else {
                throw refusal(route, new, "can only access leases in the \"kube-node-lease\" system namespace")
            }
            guard new.string(at: ["metadata", "name"]) == node else {
                throw refusal(route, new, "can only access node lease with the same name as the requesting node")
            }
            // Its lease may be owned by its own Node only, and hold no finalizer: nothing a node
            // writes may hold up or set off the garbage collector's work on other objects.
            for owner in new[path: ["metadata", "ownerReferences"]]?.arrayValue ?? [] {
                guard owner.string(at: ["kind"]) == "Node", owner.string(at: ["apiVersion"]) == "v1", owner.string(at: ["name"]) == node else {
                    throw refusal(route, new, "node \"\(node)\" may only set its own Node as the owner of its lease")
                }
            }
            if !(new[path: ["metadata", "finalizers"]]?.arrayValue ?? []).isEmpty {
                throw refusal(route, new, "node \"\(node)\" is not allowed to set finalizers on its lease")
            }
        default:
            return
        }
    }

    /// A mirror pod of a static pod: bound to this node, owned by its Node, referencing nothing
    /// the node could otherwise not read.
    private func admitMirrorPod(_ route: RequestRoute, _ pod: JSONValue) throws {
        guard pod[path: ["metadata", "annotations", Self.mirrorAnnotation]] != nil else {
            throw refusal(route, pod, "pod does not have \"\(Self.mirrorAnnotation)\" annotation, node \"\(node)\" can only create mirror pods")
        }
        guard pod.string(at: ["spec", "nodeName"]) == node else {
            throw refusal(route, pod, "node \"\(node)\" can only create pods with spec.nodeName set to itself")
        }
        try admitOwner(route, pod)
        let spec = pod["spec"] ?? .null
        if !(spec.string(at: ["serviceAccountName"]) ?? "").isEmpty || !(spec.string(at: ["serviceAccount"]) ?? "").isEmpty {
            throw refusal(route, pod, "node \"\(node)\" can not create pods that reference a service account")
        }
        let references = Self.references(spec)
        if references.contains(.secret) { throw refusal(route, pod, "node \"\(node)\" can not create pods that reference secrets") }
        if references.contains(.configMap) { throw refusal(route, pod, "node \"\(node)\" can not create pods that reference configmaps") }
        if references.contains(.clusterTrustBundle) {
            throw refusal(route, pod, "node \"\(node)\" can not create pods that reference clustertrustbundles")
        }
        if references.contains(.serviceAccountToken) {
            throw refusal(route, pod, "node \"\(node)\" can not create pods that use service account token projections")
        }
        if references.contains(.persistentVolumeClaim) {
            throw refusal(route, pod, "node \"\(node)\" can not create pods that reference persistentvolumeclaims")
        }
    }

    /// Exactly one owner: the node's own Node object (by name and UID), as controller, without
    /// blockOwnerDeletion.
    private func admitOwner(_ route: RequestRoute, _ pod: JSONValue) throws {
        guard case .array(let owners)? = pod[path: ["metadata", "ownerReferences"]], !owners.isEmpty else {
            throw refusal(route, pod, "node \"\(node)\" can only create pods with an owner reference set to itself")
        }
        guard owners.count == 1 else {
            throw refusal(route, pod, "node \"\(node)\" can only create pods with a single owner reference set to itself")
        }
        let owner = owners[0]
        guard owner.string(at: ["apiVersion"]) == "v1", owner.string(at: ["kind"]) == "Node", owner.string(at: ["name"]) == node else {
            throw refusal(route, pod, "node \"\(node)\" can only create pods with an owner reference set to itself")
        }
        guard owner["controller"] == .bool(true) else {
            throw refusal(route, pod, "node \"\(node)\" can only create pods with a controller owner reference set to itself")
        }
        if owner["blockOwnerDeletion"] == .bool(true) {
            throw refusal(route, pod, "node \"\(node)\" must not set blockOwnerDeletion on an owner reference")
        }
        guard let stored = try store.get(.nodes, namespace: "", name: node) else { throw APIError.notFound(.nodes, node) }
        let expected = stored.string(at: ["metadata", "uid"]) ?? ""
        let given = owner.string(at: ["uid"]) ?? ""
        guard given == expected else { throw refusal(route, pod, "node \(node) UID mismatch: expected \(given) got \(expected)") }
    }

    /// Status of a pod bound to this node, without touching its labels.
    private func admitPodStatus(_ route: RequestRoute, old: JSONValue?, new: JSONValue) throws {
        guard let old else { throw refusal(route, new, "unexpected operation \"CREATE\"") }
        guard old.string(at: ["spec", "nodeName"]) == node else {
            throw refusal(route, new, "node \"\(node)\" can only update pod status for pods with spec.nodeName set to itself")
        }
        guard Self.labels(old) == Self.labels(new) else {
            throw refusal(route, new, "node \"\(node)\" cannot update labels through pod status")
        }
    }

    /// What a pod spec refers to besides itself.
    enum Reference: Hashable {
        case secret, configMap, clusterTrustBundle, serviceAccountToken, persistentVolumeClaim
    }

    /// The kinds of objects a pod spec (as sent, unknown volume types included) refers to.
    static func references(_ spec: JSONValue) -> Set<Reference> {
        var found: Set<Reference> = []
        if case .array(let pullSecrets)? = spec["imagePullSecrets"], !pullSecrets.isEmpty { found.insert(.secret) }
        for list in ["initContainers", "containers", "ephemeralContainers"] {
            guard case .array(let containers)? = spec[list] else { continue }
            for container in containers {
                if case .array(let variables)? = container["env"] {
                    for variable in variables {
                        if variable[path: ["valueFrom", "secretKeyRef"]] != nil { found.insert(.secret) }
                        if variable[path: ["valueFrom", "configMapKeyRef"]] != nil { found.insert(.configMap) }
                    }
                }
                if case .array(let sources)? = container["envFrom"] {
                    for source in sources {
                        if source["secretRef"] != nil { found.insert(.secret) }
                        if source["configMapRef"] != nil { found.insert(.configMap) }
                    }
                }
            }
        }
        if case .array(let volumes)? = spec["volumes"] {
            for volume in volumes {
                if volume["persistentVolumeClaim"] != nil || volume["ephemeral"] != nil { found.insert(.persistentVolumeClaim) }
                collectVolumeReferences(volume, into: &found)
            }
        }
        return found
    }

    /// Every key anywhere in a volume source that names a Secret, ConfigMap, trust bundle or
    /// token: `secret`/`secretName`/`secretRef`/`nodePublishSecretRef` cover the secret, azureFile,
    /// cephfs, cinder, csi, flexVolume, iscsi, rbd, scaleIO and storageos sources.
    private static func collectVolumeReferences(_ value: JSONValue, into found: inout Set<Reference>) {
        switch value {
        case .object(let object):
            for member in object {
                switch member.key {
                case "secret", "secretName", "secretRef", "nodePublishSecretRef", "nodeStageSecretRef",
                     "nodeExpandSecretRef", "controllerPublishSecretRef", "controllerExpandSecretRef":
                    found.insert(.secret)
                case "configMap": found.insert(.configMap)
                case "clusterTrustBundle": found.insert(.clusterTrustBundle)
                case "serviceAccountToken": found.insert(.serviceAccountToken)
                default: break
                }
                collectVolumeReferences(member.value, into: &found)
            }
        case .array(let items):
            for item in items { collectVolumeReferences(item, into: &found) }
        default:
            return
        }
    }

    static func labels(_ object: JSONValue?) -> [String: String] {
        guard case .object(let labels)? = object?[path: ["metadata", "labels"]] else { return [:] }
        var result: [String: String] = [:]
        for member in labels { result[member.key] = member.value.stringValue ?? "" }
        return result
    }

    /// kube-apiserver's admission refusal: `<resource> "<name>" is forbidden: <why>`.
    func refusal(_ route: RequestRoute, _ object: JSONValue, _ why: String) -> APIError {
        let name = route.name ?? object.string(at: ["metadata", "name"]) ?? ""
        return APIError(code: 403, reason: "Forbidden", message: "\(route.resource.plural) \"\(name)\" is forbidden: \(why)",
                        details: StatusDetails(name: name, group: route.resource.group, kind: route.resource.plural))
    }
}
