/// How registries are reached: which are insecure, which mirrors stand in for which registry,
/// extra CA files, and the credentials to present.
public struct RegistryConfiguration: Sendable {
    /// `host[:port]` entries reached over plain HTTP, or over HTTPS without verification when
    /// they speak TLS (Docker's `insecure-registries`).
    public var insecureRegistries: Set<String> = []
    /// Registry host → mirror base URLs tried in order before the registry itself.
    public var mirrors: [String: [String]] = [:]
    /// Registry host → a PEM CA bundle trusted in addition to the system CAs.
    public var certificateAuthorityFiles: [String: String] = [:]
    /// Credentials by registry host.
    public var credentials = RegistryCredentials()
    /// Connecting must succeed and each read must deliver data within this many seconds.
    public var timeoutSeconds: Int64 = 30

    public init() {}

    /// Whether `host[:port]` is this machine (`localhost`, 127.0.0.0/8, `::1`): tried over plain
    /// HTTP when it does not speak TLS, as Docker and containerd do (TLS is still verified when it does).
    public static func isLoopback(_ host: String) -> Bool {
        var name = Substring(host)
        if name.hasPrefix("[") { name = name.dropFirst().prefix { $0 != "]" } } else if name.filter({ $0 == ":" }).count == 1 {
            name = name.prefix { $0 != ":" }
        }
        if name == "localhost" || name == "::1" { return true }
        let octets = name.split(separator: ".", omittingEmptySubsequences: false)
        return octets.count == 4 && octets[0] == "127" && octets.allSatisfy { UInt8($0) != nil }
    }

    public func isInsecure(_ host: String) -> Bool {
        insecureRegistries.contains(host) || insecureRegistries.contains(host.split(separator: ":").first.map(String.init) ?? host)
    }

    /// Where a repository of `registry` is fetched from: mirrors first, then the registry itself
    /// (`docker.io` is served by `registry-1.docker.io`).
    func endpoints(for registry: String) -> [RegistryEndpoint] {
        var result: [RegistryEndpoint] = []
        for mirror in mirrors[registry] ?? [] {
            if let endpoint = RegistryEndpoint(url: mirror, configuration: self) { result.append(endpoint) }
        }
        let host = registry == ImageReference.defaultRegistry ? "registry-1.docker.io" : registry
        result.append(RegistryEndpoint(host: host, secure: !isInsecure(registry), credentialsKey: registry))
        return result
    }
}

/// One base URL serving the Distribution API.
struct RegistryEndpoint: Sendable, Hashable {
    var host: String
    /// False for an insecure registry: HTTPS without verification, falling back to plain HTTP.
    var secure: Bool
    /// Plain HTTP is tried when the registry does not speak TLS: insecure and loopback registries.
    var plainHTTPFallback: Bool { !secure || RegistryConfiguration.isLoopback(host) }
    /// Which registry's credentials apply.
    var credentialsKey: String

    init(host: String, secure: Bool, credentialsKey: String) {
        self.host = host
        self.secure = secure
        self.credentialsKey = credentialsKey
    }

    init?(url: String, configuration: RegistryConfiguration) {
        var rest = Substring(url)
        var secure = true
        if rest.hasPrefix("https://") { rest = rest.dropFirst(8) } else if rest.hasPrefix("http://") {
            rest = rest.dropFirst(7)
            secure = false
        }
        let host = String(rest.prefix(while: { $0 != "/" }))
        guard !host.isEmpty else { return nil }
        self.host = host
        self.secure = secure && !configuration.isInsecure(host)
        credentialsKey = host
    }
}
