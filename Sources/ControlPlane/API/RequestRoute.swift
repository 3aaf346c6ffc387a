/// A request path resolved against the resources the server serves.
struct RequestRoute: Equatable {
    var resource: ResourceType
    /// The namespace in the URL, if the path is namespaced.
    var namespace: String?
    var name: String?
    var subresource: String?
    /// For `nodes/<name>/proxy/<path>`: the path after `proxy` (its segments as they came).
    var proxyPath: [String] = []
    /// The legacy `/watch/` path prefix.
    var legacyWatch = false

    static func == (lhs: RequestRoute, rhs: RequestRoute) -> Bool {
        lhs.resource == rhs.resource && lhs.namespace == rhs.namespace && lhs.name == rhs.name
            && lhs.subresource == rhs.subresource && lhs.legacyWatch == rhs.legacyWatch && lhs.proxyPath == rhs.proxyPath
    }

    /// Parses `/api/v1/...` and `/apis/<group>/<version>/...` resource paths; nil if not one.
    static func parse(_ path: String) throws -> RequestRoute? {
        var segments = path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        let group: String
        let version: String
        if segments.first == "api", segments.count >= 3 {
            group = ""
            version = segments[1]
            segments.removeFirst(2)
        } else if segments.first == "apis", segments.count >= 4 {
            group = segments[1]
            version = segments[2]
            segments.removeFirst(3)
        } else {
            return nil
        }
        var legacyWatch = false
        if segments.first == "watch" {
            legacyWatch = true
            segments.removeFirst()
        }
        var namespace: String?
        // `namespaces/<ns>/<resource>...` is a namespaced path unless it is the namespace itself.
        if segments.count >= 3, segments[0] == "namespaces" {
            namespace = segments[1]
            segments.removeFirst(2)
        }
        guard let plural = segments.first else { return nil }
        guard let resource = ResourceType.find(group: group, version: version, plural: plural) else {
            throw APIError(code: 404, reason: "NotFound", message: "the server could not find the requested resource (\(group.isEmpty ? "" : group + "/")\(version) \(plural))")
        }
        if namespace != nil && !resource.namespaced {
            throw APIError(code: 404, reason: "NotFound", message: "\(resource.qualifiedName) is not a namespaced resource")
        }
        let name = segments.count > 1 ? segments[1] : nil
        let subresource = segments.count > 2 ? segments[2] : nil
        if segments.count > 3, !(resource == .nodes && subresource == "proxy") {
            throw APIError(code: 404, reason: "NotFound", message: "the server could not find the requested resource")
        }
        if let subresource, !resource.subresources.contains(subresource) {
            throw APIError(code: 404, reason: "NotFound", message: "\(resource.qualifiedName) has no subresource \"\(subresource)\"")
        }
        return RequestRoute(resource: resource, namespace: namespace, name: name, subresource: subresource, proxyPath: Array(segments.dropFirst(3)),
                            legacyWatch: legacyWatch)
    }
}
