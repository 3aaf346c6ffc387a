import KubeModel
import HTTPServing

/// Establishes who sent a request: a client certificate verified against the cluster CA, a
/// bootstrap token (`Authorization: Bearer <id>.<secret>`), or a static token. Requests without
/// credentials are `system:anonymous`, which may only read `cluster-info`; bad credentials are 401.
public struct Authenticator: Sendable {
    /// Static bearer tokens and the identity each stands for.
    public var tokens: [String: RequestIdentity]
    let store: ObjectStore?

    public static let anonymous = RequestIdentity(user: "system:anonymous", groups: ["system:unauthenticated"])

    public init(store: ObjectStore? = nil, tokens: [String: RequestIdentity] = [:]) {
        self.store = store
        self.tokens = tokens
    }

    func authenticate(_ request: HTTPRequest) throws -> RequestIdentity {
        if let authorization = request.headers["authorization"] {
            let parts = authorization.split(separator: " ", maxSplits: 1).map(String.init)
            guard parts.count == 2, parts[0].lowercased() == "bearer" else { throw APIError.unauthorized() }
            if let identity = tokens[parts[1]] { return identity }
            if let store, let identity = BootstrapTokens.authenticate(parts[1], store: store) { return identity }
            throw APIError.unauthorized()
        }
        if let identity = request.clientCertificate { return identity }
        return Self.anonymous
    }
}

