import KubeModel

/// A resource the API serves: where it lives in the URL space and what kind it holds.
public struct ResourceType: Sendable, Hashable {
    /// The API group; empty for the core group.
    public var group: String
    public var version: String
    /// The plural lower-case name used in URLs (`pods`).
    public var plural: String
    public var singular: String
    public var kind: String
    public var namespaced: Bool
    public var shortNames: [String] = []
    /// Subresources served (`status`, `log`, `approval`).
    public var subresources: [String] = []
    public var verbs: [String] = ["create", "delete", "get", "list", "patch", "update", "watch"]
    /// Groupings kubectl expands (`kubectl get all`).
    public var categories: [String] = []

    /// `v1` or `group/version`.
    public var apiVersion: String { group.isEmpty ? version : "\(group)/\(version)" }
    /// `pods` or `leases.coordination.k8s.io`, as Kubernetes names a resource in messages.
    public var qualifiedName: String { group.isEmpty ? plural : "\(plural).\(group)" }
    /// The key objects of this type are stored under.
    var storageKey: String { qualifiedName }
}

extension ResourceType {
    public static let namespaces = ResourceType(
        group: "", version: "v1", plural: "namespaces", singular: "namespace", kind: "Namespace", namespaced: false,
        shortNames: ["ns"], subresources: ["status"])
    public static let pods = ResourceType(
        group: "", version: "v1", plural: "pods", singular: "pod", kind: "Pod", namespaced: true,
        shortNames: ["po"], subresources: ["status", "log", "exec", "attach", "portforward"], categories: ["all"])
    public static let nodes = ResourceType(
        group: "", version: "v1", plural: "nodes", singular: "node", kind: "Node", namespaced: false,
        shortNames: ["no"], subresources: ["status", "proxy"])
    public static let events = ResourceType(
        group: "", version: "v1", plural: "events", singular: "event", kind: "Event", namespaced: true, shortNames: ["ev"])
    public static let configMaps = ResourceType(
        group: "", version: "v1", plural: "configmaps", singular: "configmap", kind: "ConfigMap", namespaced: true, shortNames: ["cm"])
    public static let secrets = ResourceType(
        group: "", version: "v1", plural: "secrets", singular: "secret", kind: "Secret", namespaced: true)
    public static let serviceAccounts = ResourceType(
        group: "", version: "v1", plural: "serviceaccounts", singular: "serviceaccount", kind: "ServiceAccount", namespaced: true,
        shortNames: ["sa"])
    public static let services = ResourceType(
        group: "", version: "v1", plural: "services", singular: "service", kind: "Service", namespaced: true,
        shortNames: ["svc"], subresources: ["status"], categories: ["all"])
    public static let endpointSlices = ResourceType(
        group: "discovery.k8s.io", version: "v1", plural: "endpointslices", singular: "endpointslice", kind: "EndpointSlice", namespaced: true)
    public static let leases = ResourceType(
        group: "coordination.k8s.io", version: "v1", plural: "leases", singular: "lease", kind: "Lease", namespaced: true)
    public static let certificateSigningRequests = ResourceType(
        group: "certificates.k8s.io", version: "v1", plural: "certificatesigningrequests", singular: "certificatesigningrequest",
        kind: "CertificateSigningRequest", namespaced: false, shortNames: ["csr"], subresources: ["status", "approval"])

    public static let replicaSets = ResourceType(
        group: "apps", version: "v1", plural: "replicasets", singular: "replicaset", kind: "ReplicaSet", namespaced: true,
        shortNames: ["rs"], subresources: ["status", "scale"], categories: ["all"])
    public static let deployments = ResourceType(
        group: "apps", version: "v1", plural: "deployments", singular: "deployment", kind: "Deployment", namespaced: true,
        shortNames: ["deploy"], subresources: ["status", "scale"], categories: ["all"])
    public static let daemonSets = ResourceType(
        group: "apps", version: "v1", plural: "daemonsets", singular: "daemonset", kind: "DaemonSet", namespaced: true,
        shortNames: ["ds"], subresources: ["status"], categories: ["all"])
    public static let controllerRevisions = ResourceType(
        group: "apps", version: "v1", plural: "controllerrevisions", singular: "controllerrevision", kind: "ControllerRevision", namespaced: true)
    public static let jobs = ResourceType(
        group: "batch", version: "v1", plural: "jobs", singular: "job", kind: "Job", namespaced: true,
        subresources: ["status"], categories: ["all"])
    public static let cronJobs = ResourceType(
        group: "batch", version: "v1", plural: "cronjobs", singular: "cronjob", kind: "CronJob", namespaced: true,
        shortNames: ["cj"], subresources: ["status"], categories: ["all"])

    public static let nodeMetrics = ResourceType(
        group: "metrics.k8s.io", version: "v1beta1", plural: "nodes", singular: "", kind: "NodeMetrics", namespaced: false,
        verbs: ["get", "list"])
    public static let podMetrics = ResourceType(
        group: "metrics.k8s.io", version: "v1beta1", plural: "pods", singular: "", kind: "PodMetrics", namespaced: true,
        verbs: ["get", "list"])

    /// Every resource the server serves, in discovery order.
    public static let all: [ResourceType] = [
        .namespaces, .pods, .nodes, .events, .configMaps, .secrets, .serviceAccounts, .services, .leases, .certificateSigningRequests,
        .replicaSets, .deployments, .daemonSets, .controllerRevisions, .jobs, .cronJobs, .endpointSlices, .nodeMetrics, .podMetrics,
    ]

    /// The resource of an owner reference's `apiVersion` and `kind`, if the server serves it.
    static func find(apiVersion: String, kind: String) -> ResourceType? {
        all.first { $0.apiVersion == apiVersion && $0.kind == kind && !$0.isMetrics }
    }

    /// Whether objects of this resource are usage samples kept in memory (metrics.k8s.io), not in the store.
    var isMetrics: Bool { group == "metrics.k8s.io" }

    /// The resource served at `group/version/plural`, if any.
    static func find(group: String, version: String, plural: String) -> ResourceType? {
        all.first { $0.group == group && $0.version == version && $0.plural == plural }
    }
}
