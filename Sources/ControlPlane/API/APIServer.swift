import HTTPServing
import KubeModel
import Logging
import Synchronization

/// The Kubernetes REST API over the object store: discovery, CRUD, patch, watch, tables.
public final class APIServer: HTTPRequestHandler {
    let store: ObjectStore
    let authenticator: Authenticator
    let signer: CSRSigner?
    let metricsStore = MetricsStore()
    /// Agents' recent refusals of exec upgrades (answered again to kubectl's SPDY retry).
    let streamRefusals = StreamRefusals()
    /// The agents' tunnels (streams to boards that cannot be dialled).
    let agentTunnels = AgentTunnels()
    let logger: Logger
    /// The ranges services get their cluster addresses and node ports from.
    let serviceAddressing: ServiceAddressing
    /// Held across a service write's allocation and store, so two writes never take one address.
    let allocationLock = Mutex(())

    /// Namespaces every cluster has.
    static let systemNamespaces = ["default", "kube-system", "kube-public", "kube-node-lease"]

    /// Who sent the request being handled (for admission deep in the write path).
    @TaskLocal static var requester: RequestIdentity?

    /// The client certificate and key for the agents' endpoints (`pods/log`); nil: logs unavailable.
    let kubeletClient: (certificatePEM: [UInt8], keyPEM: [UInt8])?

    public init(store: ObjectStore, authenticator: Authenticator, signer: CSRSigner? = nil,
                kubeletClient: (certificatePEM: [UInt8], keyPEM: [UInt8])? = nil, serviceAddressing: ServiceAddressing = .standard,
                logger: Logger) throws {
        self.store = store
        self.serviceAddressing = serviceAddressing
        self.kubeletClient = kubeletClient
        self.authenticator = authenticator
        self.signer = signer
        self.logger = logger
        try Self.ensureSystemNamespaces(in: store)
    }

    /// Creates default, kube-system, kube-public and kube-node-lease if missing.
    static func ensureSystemNamespaces(in store: ObjectStore) throws {
        for name in systemNamespaces where try store.get(.namespaces, namespace: "", name: name) == nil {
            var namespace = Namespace(name: name)
            namespace.status = NamespaceStatus(phase: "Active")
            _ = try store.create(.namespaces, namespace: "", name: name, object: try KubeJSON.tree(namespace))
        }
    }

    public func handle(_ request: HTTPRequest) async -> HTTPResponse {
        do {
            return try await route(request)
        } catch let error as APIError {
            if error.code >= 500 { logger.error("\(request.method) \(request.path): \(error)") }
            return Self.statusResponse(error)
        } catch {
            logger.error("\(request.method) \(request.path): \(error)")
            return Self.statusResponse(.internalError("\(error)"))
        }
    }

    static func statusResponse(_ error: APIError) -> HTTPResponse {
        .json(error.code, APIHTTPServer.statusBytes(error.status))
    }

    static func objectResponse(_ status: Int, _ object: JSONValue, warnings: [String] = []) -> HTTPResponse {
        var response = HTTPResponse.json(status, KubeJSON.serialize(object))
        for warning in warnings {
            // RFC 7234 warn-text is a quoted string: escape backslashes and quotes.
            var escaped = ""
            for character in warning {
                if character == "\"" || character == "\\" { escaped.append("\\") }
                escaped.append(character)
            }
            response.headers.append(("Warning", "299 - \"\(escaped)\""))
        }
        return response
    }

    private func route(_ request: HTTPRequest) async throws -> HTTPResponse {
        switch (request.method, request.path) {
        case ("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/livez"):
            return .text(200, "ok")
        case ("GET", "/version"):
            return Self.objectResponse(200, Discovery.version())
        default:
            break
        }
        let identity = try authenticator.authenticate(request)
        let path = request.path.hasSuffix("/") && request.path.count > 1 ? String(request.path.dropLast()) : request.path
        if identity == Authenticator.anonymous, (try? RequestRoute.parse(path)) == nil {
            try Authorizer.authorizeNonResource(identity, method: request.method, path: request.path)
        }
        if path == TunnelMux.path { return try agentTunnel(request, identity: identity) }
        if request.method == "GET", let document = try discovery(path) {
            return Self.objectResponse(200, document)
        }
        guard let route = try RequestRoute.parse(path) else {
            throw APIError(code: 404, reason: "NotFound", message: "the server could not find the requested resource")
        }
        let verb = Self.verb(request, route)
        try Authorizer(store: store).authorize(identity, verb: verb, route: route, request: request)
        return try await Self.$requester.withValue(identity) { try await perform(verb, route, request, identity: identity) }
    }

    private func perform(_ verb: String, _ route: RequestRoute, _ request: HTTPRequest, identity: RequestIdentity) async throws -> HTTPResponse {
        if route.resource.isMetrics { return try metrics(route, request, verb: verb) }
        if route.resource == .pods, route.subresource == "exec" || route.subresource == "attach" { return try await podExec(route, request) }
        if route.resource == .pods, route.subresource == "portforward" { return try await podPortForward(route, request) }
        if route.resource == .nodes, route.subresource == "proxy" { return try await nodeProxy(route, request) }
        if route.subresource == "scale" { return try scale(verb, route, request) }
        switch verb {
        case "get":
            if route.subresource == "log" { return try await podLog(route, request) }
            return try get(route, request)
        case "list": return try list(route, request)
        case "watch": return try watch(route, request)
        case "create": return try create(route, request, identity: identity)
        case "update": return try update(route, request)
        case "patch": return try patch(route, request)
        case "delete": return try delete(route, request)
        default: throw APIError.methodNotAllowed("the server does not allow this method on the requested resource")
        }
    }

    /// NodeRestriction admission for a create (`old` nil) or update by a node; others pass.
    func admitNodeWrite(_ route: RequestRoute, old: JSONValue?, new: JSONValue) throws {
        guard let identity = Self.requester, let node = NodeRestriction.nodeName(of: identity) else { return }
        try NodeRestriction(store: store, node: node).admit(route, old: old, new: new)
    }

    /// The Kubernetes verb a request stands for.
    static func verb(_ request: HTTPRequest, _ route: RequestRoute) -> String {
        // Streams into a pod are `create` whether they arrive as a GET (WebSocket) or a POST
        // (SPDY), as kube-apiserver authorizes WebSocket upgrades.
        if route.resource == .pods, ["exec", "attach", "portforward"].contains(route.subresource ?? ""), route.name != nil,
           request.method == "GET" || request.method == "POST" {
            return "create"
        }
        switch request.method {
        case "GET":
            if route.legacyWatch || request.query["watch"] == "true" || request.query["watch"] == "1" { return "watch" }
            return route.name == nil ? "list" : "get"
        case "POST": return route.name == nil ? "create" : "unsupported"
        case "PUT": return route.name == nil ? "unsupported" : "update"
        case "PATCH": return route.name == nil ? "unsupported" : "patch"
        case "DELETE": return route.name == nil ? "deletecollection" : "delete"
        default: return "unsupported"
        }
    }

    private func discovery(_ path: String) throws -> JSONValue? {
        let segments = path.split(separator: "/").map(String.init)
        switch segments.count {
        case 1 where segments[0] == "api": return Discovery.coreVersions()
        case 1 where segments[0] == "apis": return Discovery.groupList()
        case 2 where segments[0] == "api": return Discovery.resourceList(group: "", version: segments[1])
        case 2 where segments[0] == "apis": return Discovery.group(segments[1])
        case 3 where segments[0] == "apis": return Discovery.resourceList(group: segments[1], version: segments[2])
        case 2 where segments == ["openapi", "v3"]: return Discovery.openAPIRoot()
        case 4 where segments[0] == "openapi" && segments[1] == "v3" && segments[2] == "api":
            return Discovery.openAPIDocument(group: "", version: segments[3])
        case 5 where segments[0] == "openapi" && segments[1] == "v3" && segments[2] == "apis":
            return Discovery.openAPIDocument(group: segments[3], version: segments[4])
        default: return nil
        }
    }

    /// The namespace a route's object lives in ("" for cluster-scoped resources).
    static func namespace(of route: RequestRoute) throws -> String {
        guard route.resource.namespaced else { return "" }
        guard let namespace = route.namespace else {
            throw APIError.badRequest("\(route.resource.qualifiedName) is namespaced: the request needs a namespace")
        }
        return namespace
    }

    /// Parses a request body as JSON or YAML by its content type.
    static func body(_ request: HTTPRequest) throws -> JSONValue {
        let contentType = request.headers["content-type"] ?? "application/json"
        let mediaType = contentType.split(separator: ";").first.map { String($0).trimmingWhitespace().lowercased() } ?? ""
        if mediaType == "application/vnd.kubernetes.protobuf" { return try ProtobufBody.decode(request.body) }
        guard ["application/json", "application/yaml", "application/x-yaml", "text/yaml", ""].contains(mediaType) else {
            // Protobuf and CBOR clients fall back to JSON on 415.
            throw APIError(code: 415, reason: "UnsupportedMediaType", message: "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml")
        }
        do {
            if contentType.contains("yaml") {
                let documents = try KubeYAML.documents(request.body)
                guard documents.count == 1 else { throw APIError.badRequest("expected one YAML document, found \(documents.count)") }
                return documents[0]
            }
            return try KubeJSON.parse(request.body)
        } catch let error as KubeDecodingError {
            throw APIError.badRequest("the request body is not valid: \(error)")
        }
    }

    /// `fieldValidation`: Strict rejects unknown fields; Ignore and Warn (the default) drop them.
    static func fieldValidation(_ request: HTTPRequest) throws -> (mode: FieldValidation, warn: Bool) {
        switch request.query["fieldValidation"] ?? "Warn" {
        case "Strict": return (.strict, false)
        case "Ignore": return (.discard, false)
        case "Warn", "": return (.discard, true)
        case let other: throw APIError.badRequest("fieldValidation must be Ignore, Warn or Strict, not \"\(other)\"")
        }
    }

    static func wantsTable(_ request: HTTPRequest) -> Bool {
        (request.headers["accept"] ?? "").contains("as=Table")
    }
}
