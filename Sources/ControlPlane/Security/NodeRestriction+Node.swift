import KubeModel

extension NodeRestriction {
    /// Labels a kubelet may set on its own Node (`k8s.io/kubelet/pkg/apis` IsKubeletLabel).
    static let kubeletLabels: Set = [
        "kubernetes.io/hostname", "kubernetes.io/arch", "kubernetes.io/os",
        "beta.kubernetes.io/arch", "beta.kubernetes.io/os", "beta.kubernetes.io/instance-type",
        "node.kubernetes.io/instance-type",
        "failure-domain.beta.kubernetes.io/region", "failure-domain.beta.kubernetes.io/zone",
        "topology.kubernetes.io/region", "topology.kubernetes.io/zone",
    ]
    /// Label namespaces (and their subdomains) a kubelet may use freely.
    static let kubeletLabelNamespaces = ["kubelet.kubernetes.io", "node.kubernetes.io"]

    /// Its own Node only; on create no configSource, no pod range and no forbidden label; on
    /// update no change to configSource, taints, forbidden labels, pod range, owners, or a
    /// providerID already set.
    func admitNode(_ route: RequestRoute, old: JSONValue?, new: JSONValue) throws {
        let requested = route.name ?? new.string(at: ["metadata", "name"]) ?? ""
        guard requested == node else { throw refusal(route, new, "node \"\(node)\" is not allowed to modify node \"\(requested)\"") }
        guard let updated = try? KubeJSON.decode(Node.self, from: new) else { throw refusal(route, new, "unexpected object") }
        guard let old else {
            if updated.spec?.configSource.map({ $0 != .null }) == true {
                throw refusal(route, new, "node \"\(node)\" is not allowed to create pods with a non-nil configSource")
            }
            let forbidden = Self.forbiddenLabels(Self.modifiedLabels(Self.labels(new), [:]))
            if !forbidden.isEmpty {
                throw refusal(route, new, "node \"\(node)\" is not allowed to set the following labels: \(forbidden.joined(separator: ", "))")
            }
            // The server's IPAM gives out pod ranges; a node choosing one could take another's.
            if updated.spec?.podCIDR != nil || !(updated.spec?.podCIDRs ?? []).isEmpty {
                throw refusal(route, new, "node \"\(node)\" is not allowed to set spec.podCIDR")
            }
            return
        }
        guard let previous = try? KubeJSON.decode(Node.self, from: old) else { throw refusal(route, new, "unexpected object") }
        if let source = updated.spec?.configSource, source != .null, source != previous.spec?.configSource {
            throw refusal(route, new, "node \"\(node)\" is not allowed to update configSource to a new non-nil configSource")
        }
        if (updated.spec?.taints ?? []) != (previous.spec?.taints ?? []) {
            throw refusal(route, new, "node \"\(node)\" is not allowed to modify taints")
        }
        let forbidden = Self.forbiddenLabels(Self.modifiedLabels(Self.labels(new), Self.labels(old)))
        if !forbidden.isEmpty { throw refusal(route, new, "is not allowed to modify labels: \(forbidden.joined(separator: ", "))") }
        if updated.spec?.podCIDR != previous.spec?.podCIDR || (updated.spec?.podCIDRs ?? []) != (previous.spec?.podCIDRs ?? []) {
            throw refusal(route, new, "node \"\(node)\" is not allowed to modify spec.podCIDR")
        }
        if let set = previous.spec?.providerID, !set.isEmpty, updated.spec?.providerID != set {
            throw refusal(route, new, "node \"\(node)\" is not allowed to modify spec.providerID once set")
        }
        if (updated.metadata.ownerReferences ?? []) != (previous.metadata.ownerReferences ?? []) {
            throw refusal(route, new, "node \"\(node)\" is not allowed to modify its ownerReferences")
        }
    }

    /// The keys whose value differs between two label sets (added, removed or changed).
    static func modifiedLabels(_ a: [String: String], _ b: [String: String]) -> Set<String> {
        var modified: Set<String> = []
        for (key, value) in a where b[key] != value { modified.insert(key) }
        for (key, value) in b where a[key] != value { modified.insert(key) }
        return modified
    }

    /// Of the modified labels, those a node may not add, remove or change, sorted:
    /// `node-restriction.kubernetes.io/` ones and `kubernetes.io`/`k8s.io` ones a kubelet does not set.
    static func forbiddenLabels(_ modified: Set<String>) -> [String] {
        modified.filter { key in
            let namespace = labelNamespace(key)
            if within(namespace, "node-restriction.kubernetes.io") { return true }
            let isKubernetes = within(namespace, "kubernetes.io") || within(namespace, "k8s.io")
            return isKubernetes && !isKubeletLabel(key)
        }.sorted()
    }

    /// Whether a kubelet may set the label on its Node.
    static func isKubeletLabel(_ key: String) -> Bool {
        if kubeletLabels.contains(key) { return true }
        let namespace = labelNamespace(key)
        return kubeletLabelNamespaces.contains { within(namespace, $0) }
    }

    /// The prefix of a label key before `/`, "" without one.
    static func labelNamespace(_ key: String) -> String {
        guard let slash = key.firstIndex(of: "/") else { return "" }
        return String(key[..<slash])
    }

    /// Whether `namespace` is `domain` or a subdomain of it.
    private static func within(_ namespace: String, _ domain: String) -> Bool {
        namespace == domain || namespace.hasSuffix("." + domain)
    }
}
