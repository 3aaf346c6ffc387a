import KubeModel

/// Establishes who sent a request: a client certificate verified against the cluster CA, or a
/// bearer token the server knows. Anonymous requests are refused (401).
public struct Authenticator: Sendable {
    /// Static bearer tokens and the identity each stands for (the admin token).
    public var tokens: [String: RequestIdentity]

    public init(tokens: [String: RequestIdentity] = [:]) { self.tokens = tokens }

    func authenticate(_ request: HTTPRequest) throws -> RequestIdentity {
        if let authorization = request.headers["authorization"] {
            let parts = authorization.split(separator: " ", maxSplits: 1).map(String.init)
            guard parts.count == 2, parts[0].lowercased() == "bearer", let identity = tokens[parts[1]] else { throw APIError.unauthorized() }
            return identity
        }
        if let identity = request.clientCertificate { return identity }
        throw APIError.unauthorized()
    }
}

/// Decides whether an identity may perform a verb on a route.
///
/// Cluster admins (`system:masters`) may do everything; other identities get 403 until the
/// node and bootstrap rules are in place.
enum Authorizer {
    static let adminGroup = "system:masters"

    static func authorize(_ identity: RequestIdentity, verb: String, route: RequestRoute) throws {
        if identity.groups.contains(adminGroup) { return }
        let resource = route.subresource.map { "\(route.resource.plural)/\($0)" } ?? route.resource.plural
        var message = "\(route.resource.plural) is forbidden: User \"\(identity.user)\" cannot \(verb) resource \"\(resource)\" in API group \"\(route.resource.group)\""
        message += route.namespace.map { " in the namespace \"\($0)\"" } ?? " at the cluster scope"
        throw APIError.forbidden(message)
    }
}
