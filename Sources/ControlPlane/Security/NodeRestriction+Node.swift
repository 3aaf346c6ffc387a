import KubeModel

extension NodeRestriction {
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

    /// Of the modified labels, those a node may not add, remove or change.
    static func forbiddenLabels(_ modified: Set<String>) -> [String] { KubeletLabels.forbidden(modified) }
}
