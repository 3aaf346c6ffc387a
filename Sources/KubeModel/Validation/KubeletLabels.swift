/// The labels a node may put on its own Node (kube-apiserver's NodeRestriction and the
/// kubelet's `--node-labels` check share these rules).
public enum KubeletLabels {
    /// Labels a kubelet may set on its own Node (`k8s.io/kubelet/pkg/apis` IsKubeletLabel).
    static let allowed: Set = [
        "kubernetes.io/hostname", "kubernetes.io/arch", "kubernetes.io/os",
        "beta.kubernetes.io/arch", "beta.kubernetes.io/os", "beta.kubernetes.io/instance-type",
        "node.kubernetes.io/instance-type",
        "failure-domain.beta.kubernetes.io/region", "failure-domain.beta.kubernetes.io/zone",
        "topology.kubernetes.io/region", "topology.kubernetes.io/zone",
    ]
    /// Label namespaces (and their subdomains) a kubelet may use freely.
    static let allowedNamespaces = ["kubelet.kubernetes.io", "node.kubernetes.io"]

    /// Of `keys`, those a node may not add, remove or change, sorted:
    /// `node-restriction.kubernetes.io/` ones and `kubernetes.io`/`k8s.io` ones a kubelet does not set.
    public static func forbidden(_ keys: some Sequence<String>) -> [String] {
        keys.filter { key in
            let namespace = self.namespace(key)
            if within(namespace, "node-restriction.kubernetes.io") { return true }
            let isKubernetes = within(namespace, "kubernetes.io") || within(namespace, "k8s.io")
            return isKubernetes && !isAllowed(key)
        }.sorted()
    }

    /// Whether a kubelet may set the label on its Node.
    public static func isAllowed(_ key: String) -> Bool {
        if allowed.contains(key) { return true }
        let namespace = self.namespace(key)
        return allowedNamespaces.contains { within(namespace, $0) }
    }

    /// The prefix of a label key before `/`, "" without one.
    static func namespace(_ key: String) -> String {
        guard let slash = key.firstIndex(of: "/") else { return "" }
        return String(key[..<slash])
    }

    /// Whether `namespace` is `domain` or a subdomain of it.
    static func within(_ namespace: String, _ domain: String) -> Bool {
        namespace == domain || namespace.hasSuffix("." + domain)
    }
}
