import KubeModel
import HTTPServing

/// Decides whether an identity may perform a verb on a route, with the rules Kubernetes ships:
/// cluster admins (`system:masters`) may do everything; bootstrap tokens may create and read
/// certificate signing requests; nodes get the node authorizer's rules (their own Node and
/// Lease, the pods bound to them and the secrets and configmaps those pods use, events);
/// anonymous callers may only read `cluster-info` (and the unauthenticated `/version`,
/// `/healthz`, `/readyz`, `/livez`, answered before authentication), as the default RBAC roles
/// `system:public-info-viewer` and the bootstrap signer's `cluster-info` role allow: anything
/// else, discovery and OpenAPI included, is 403 Forbidden for them, as kube-apiserver answers.
struct Authorizer {
    static let adminGroup = "system:masters"
    static let nodesGroup = "system:nodes"
    static let nodeUserPrefix = "system:node:"

    let store: ObjectStore

    func authorize(_ identity: RequestIdentity, verb: String, route: RequestRoute, request: HTTPRequest) throws {
        if identity.groups.contains(Self.adminGroup) { return }
        if identity == Authenticator.anonymous {
            if verb == "get", route.resource == .configMaps, route.namespace == "kube-public", route.name == "cluster-info",
               route.subresource == nil {
                return
            }
            throw forbidden(identity, verb, route)
        }
        if route.resource == .certificateSigningRequests, ["create", "get", "list", "watch"].contains(verb), route.subresource == nil,
           identity.groups.contains("system:bootstrappers") || identity.groups.contains(Self.nodesGroup) {
            return
        }
        if identity.groups.contains(Self.nodesGroup), identity.user.hasPrefix(Self.nodeUserPrefix),
           try nodeMayAccess(String(identity.user.dropFirst(Self.nodeUserPrefix.count)), verb: verb, route: route, request: request) {
            return
        }
        throw forbidden(identity, verb, route)
    }

    /// Requests outside the resource API (discovery, OpenAPI, unknown paths): every
    /// authenticated identity may read them (`system:discovery`), anonymous callers may not.
    static func authorizeNonResource(_ identity: RequestIdentity, method: String, path: String) throws {
        guard identity == Authenticator.anonymous else { return }
        throw APIError(code: 403, reason: "Forbidden",
                       message: "forbidden: User \"\(identity.user)\" cannot \(method.lowercased()) path \"\(path)\"", details: StatusDetails())
    }

    /// The node authorizer: what the agent of `node` needs and nothing more.
    private func nodeMayAccess(_ node: String, verb: String, route: RequestRoute, request: HTTPRequest) throws -> Bool {
        let reads: Set = ["get", "list", "watch"]
        let writes: Set = ["update", "patch"]
        switch route.resource {
        case .nodes:
            // The node proxy reaches every agent's endpoint (logs of any pod): never for nodes.
            if route.subresource == "proxy" { return false }
            if reads.contains(verb) { return true }
            if verb == "create" { return (try? APIServer.body(request))?.string(at: ["metadata", "name"]) == node }
            return writes.contains(verb) && route.name == node
        case .leases:
            return route.namespace == "kube-node-lease" && (route.name == node || (verb == "create" && (try? APIServer.body(request))?.string(at: ["metadata", "name"]) == node))
                && (reads.contains(verb) || writes.contains(verb) || verb == "create" || verb == "delete")
        case .events:
            return ["create", "update", "patch"].contains(verb)
        case .nodeMetrics:
            return (verb == "update" || verb == "create") && (route.name ?? (try? APIServer.body(request))?.string(at: ["metadata", "name"])) == node
        case .podMetrics:
            guard verb == "update" || verb == "create", let namespace = route.namespace else { return false }
            let name = route.name ?? (try? APIServer.body(request))?.string(at: ["metadata", "name"]) ?? ""
            return try store.get(.pods, namespace: namespace, name: name)?.string(at: ["spec", "nodeName"]) == node
        case .pods:
            switch verb {
            case "list", "watch": return selects(request, field: "spec.nodeName", value: node)
            case "create":  // mirror pods of static pods; never a stream into a pod
                guard route.subresource == nil else { return false }
                return (try? APIServer.body(request))?.string(at: ["spec", "nodeName"]) == node
            case "get":
                guard route.subresource == nil || route.subresource == "status" else { return false }
                return try podIsBound(route, to: node, orMissing: false)
            case "delete":
                guard route.subresource == nil else { return false }
                return try podIsBound(route, to: node, orMissing: false)
            case "update", "patch":
                guard route.subresource == "status" else { return false }
                // A missing pod is kube-apiserver's 404 (a board writing the final status of a
                // pod deleted meanwhile learns that it is gone, not that it is refused). Safe
                // against a pod created meanwhile: the write checks the stored pod's node in the
                // same transaction (NodeRestriction).
                return try podIsBound(route, to: node, orMissing: true)
            default: return false
            }
        case .services, .endpointSlices:
            // The node is also its service proxy (kube-proxy's `system:node-proxier` rules).
            return reads.contains(verb) && route.subresource == nil
        case .configMaps, .secrets:
            guard let namespace = route.namespace else { return false }
            let name: String
            if verb == "get", let routeName = route.name {
                name = routeName
            } else if verb == "list" || verb == "watch", let selected = selectedName(request) {
                name = selected
            } else {
                return false
            }
            return try referencedByPodOn(node, namespace: namespace, resource: route.resource, name: name)
        default:
            return false
        }
    }

    /// Whether the pod the route names is bound to `node`; a pod that does not exist is let
    /// through only `orMissing` (for writes that check the stored pod again as they write: a
    /// read or a delete would act on a pod created between this check and the handler).
    private func podIsBound(_ route: RequestRoute, to node: String, orMissing: Bool) throws -> Bool {
        guard let name = route.name, let namespace = route.namespace else { return false }
        guard let pod = try store.get(.pods, namespace: namespace, name: name) else { return orMissing }
        return pod.string(at: ["spec", "nodeName"]) == node
    }

    private func selects(_ request: HTTPRequest, field: String, value: String) -> Bool {
        (request.query["fieldSelector"] ?? "").split(separator: ",").contains { term in
            term == "\(field)=\(value)" || term == "\(field)==\(value)"
        }
    }

    private func selectedName(_ request: HTTPRequest) -> String? {
        for term in (request.query["fieldSelector"] ?? "").split(separator: ",") {
            let text = String(term)
            for prefix in ["metadata.name==", "metadata.name="] where text.hasPrefix(prefix) { return String(text.dropFirst(prefix.count)) }
        }
        return nil
    }

    /// Whether a pod bound to `node` uses the configmap or secret.
    private func referencedByPodOn(_ node: String, namespace: String, resource: ResourceType, name: String) throws -> Bool {
        for tree in try store.list(.pods, namespace: namespace).items where tree.string(at: ["spec", "nodeName"]) == node {
            guard let pod = try? KubeJSON.decode(Pod.self, from: tree) else { continue }
            let references = PodReferences(pod)
            if resource == .secrets ? references.secrets.contains(name) : references.configMaps.contains(name) { return true }
        }
        return false
    }

    private func forbidden(_ identity: RequestIdentity, _ verb: String, _ route: RequestRoute) -> APIError {
        let resource = route.subresource.map { "\(route.resource.plural)/\($0)" } ?? route.resource.plural
        var message = "\(route.resource.plural)\(route.name.map { " \"\($0)\"" } ?? "") is forbidden: User \"\(identity.user)\" cannot \(verb) resource \"\(resource)\" in API group \"\(route.resource.group)\""
        message += route.namespace.map { " in the namespace \"\($0)\"" } ?? " at the cluster scope"
        return APIError.forbidden(message)
    }
}
