import KubeModel

/// Where a daemon set's pods belong and what its pods look like: the node checks of
/// kube's daemon set controller (selector, required node affinity, taints with the
/// tolerations every daemon pod gets) and the pod bound to one node.
enum DaemonSetPlacement {
    static let revisionHashLabel = "controller-revision-hash"

    /// The tolerations kube's daemon set controller adds to every daemon pod: a daemon stays on
    /// a node that is not ready, unreachable (an offline board), under pressure or cordoned.
    static func defaultTolerations(hostNetwork: Bool) -> [Toleration] {
        var tolerations = [
            Toleration(key: "node.kubernetes.io/not-ready", operator: .exists, effect: .noExecute),
            Toleration(key: "node.kubernetes.io/unreachable", operator: .exists, effect: .noExecute),
            Toleration(key: "node.kubernetes.io/disk-pressure", operator: .exists, effect: .noSchedule),
            Toleration(key: "node.kubernetes.io/memory-pressure", operator: .exists, effect: .noSchedule),
            Toleration(key: "node.kubernetes.io/pid-pressure", operator: .exists, effect: .noSchedule),
            Toleration(key: "node.kubernetes.io/unschedulable", operator: .exists, effect: .noSchedule),
        ]
        if hostNetwork { tolerations.append(Toleration(key: "node.kubernetes.io/network-unavailable", operator: .exists, effect: .noSchedule)) }
        return tolerations
    }

    /// The template's tolerations with the daemon defaults it does not already have.
    static func tolerations(of spec: PodSpec?) -> [Toleration] {
        var tolerations = spec?.tolerations ?? []
        for toleration in defaultTolerations(hostNetwork: spec?.hostNetwork == true) where !tolerations.contains(toleration) {
            tolerations.append(toleration)
        }
        return tolerations
    }

    /// Whether the daemon set's pod belongs on `node` (its node selector and required affinity
    /// match, and it tolerates every NoSchedule and NoExecute taint), and whether a pod already
    /// there stays (only NoExecute taints remove one: a board that went offline keeps its daemon).
    static func placement(_ template: PodTemplateSpec?, on node: Node) -> (shouldRun: Bool, shouldContinueRunning: Bool) {
        let spec = template?.spec
        let labels = node.metadata.labels ?? [:]
        for (key, value) in spec?.nodeSelector ?? [:] where labels[key] != value { return (false, false) }
        if let required = NodeSelector.required(by: spec?.affinity), !required.matches(labels: labels, name: node.metadata.name ?? "") { return (false, false) }
        let tolerations = tolerations(of: spec)
        let untolerated = (node.spec?.taints ?? []).filter { taint in
            (taint.effect == .noSchedule || taint.effect == .noExecute) && !tolerations.contains { Scheduler.tolerates($0, taint) }
        }
        if untolerated.isEmpty { return (true, true) }
        return (false, !untolerated.contains { $0.effect == .noExecute })
    }

    /// The daemon pod for one node: bound to it (by name and by a required node affinity on
    /// its name, which replaces the template's), with the daemon tolerations and the
    /// revision's hash label, owned by the daemon set.
    static func pod(of daemonSet: DaemonSet, node: String, hash: String) -> Pod {
        let template = daemonSet.spec?.template
        var metadata = ObjectMeta(labels: (template?.metadata?.labels ?? [:]).merging([revisionHashLabel: hash]) { $1 },
                                  annotations: template?.metadata?.annotations)
        metadata.generateName = String((daemonSet.metadata.name ?? "").prefix(57)) + "-"
        metadata.finalizers = template?.metadata?.finalizers
        metadata.ownerReferences = [ControllerWrites.controllerReference(to: daemonSet)]
        var spec = template?.spec ?? PodSpec()
        spec.nodeName = node
        spec.tolerations = tolerations(of: template?.spec)
        var affinity = spec.affinity ?? .object(JSONObject())
        let term: JSONValue = ["matchFields": [["key": "metadata.name", "operator": "In", "values": [.string(node)]]]]
        affinity.set(["nodeAffinity", "requiredDuringSchedulingIgnoredDuringExecution"], ["nodeSelectorTerms": [term]])
        spec.affinity = affinity
        var pod = Pod(metadata: metadata, spec: spec)
        pod.setTypeMeta()
        return pod
    }

    /// The patch a controller revision stores: applied to the daemon set, it restores the template.
    static func revisionData(_ template: PodTemplateSpec?) -> JSONValue {
        var tree = (try? KubeJSON.tree(template)) ?? .object(JSONObject())
        tree.set(["$patch"], "replace")
        return ["spec": ["template": tree]]
    }

    /// The template a controller revision holds, if readable.
    static func template(of revision: ControllerRevision) -> PodTemplateSpec? {
        guard var tree = revision.data?[path: ["spec", "template"]] else { return nil }
        tree.set(["$patch"], nil)
        return try? KubeJSON.decode(PodTemplateSpec.self, from: tree)
    }
}
