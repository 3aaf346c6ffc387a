import FoundationEssentials
import HTTPClientCore
import KubeModel

/// What a client needs to reach one API server: where, which CA to trust, and how to log in.
public struct ClientConfiguration: Sendable {
    /// `https://host:port` (path prefixes are not supported).
    public var server: String
    /// PEM of the CA that signs the server's certificate; nil trusts the system store.
    public var certificateAuthorityPEM: [UInt8]?
    /// PEM client certificate and key, for certificate authentication.
    public var clientCertificatePEM: [UInt8]?
    public var clientKeyPEM: [UInt8]?
    /// A bearer token (bootstrap tokens, service account tokens).
    public var bearerToken: String?
    /// Skips server certificate verification (only for fetching data whose integrity is
    /// checked otherwise, like kubeadm's signed `cluster-info`).
    public var insecureSkipVerify = false
    /// A further check of the server's certificate (DER) after the chain was verified, such as
    /// the identity it must name; a returned reason refuses the server before the request.
    public var serverCertificateCheck: (@Sendable ([UInt8]) -> String?)?
    /// Makes the connection instead of a TCP connect to ``server`` (a tunnel to an agent). The
    /// connection has no address to check the certificate against, so the chain is verified
    /// and ``serverCertificateCheck`` (required then) must prove whom it names.
    public var dialer: StreamDialer?

    public init(server: String, certificateAuthorityPEM: [UInt8]? = nil, clientCertificatePEM: [UInt8]? = nil, clientKeyPEM: [UInt8]? = nil, bearerToken: String? = nil) {
        self.server = server
        self.certificateAuthorityPEM = certificateAuthorityPEM
        self.clientCertificatePEM = clientCertificatePEM
        self.clientKeyPEM = clientKeyPEM
        self.bearerToken = bearerToken
    }

    /// Host and port parsed from ``server``.
    func endpoint() throws(KubeClientError) -> (host: String, port: Int) {
        guard server.hasPrefix("https://") else { throw .configuration("the server must be an https:// URL, got \"\(server)\"") }
        var rest = Substring(server.dropFirst("https://".count))
        while rest.hasSuffix("/") { rest = rest.dropLast() }
        if rest.hasPrefix("[") {  // [IPv6]:port
            guard let close = rest.firstIndex(of: "]") else { throw .configuration("malformed IPv6 server address \"\(server)\"") }
            let host = String(rest[rest.index(after: rest.startIndex)..<close])
            let after = rest[rest.index(after: close)...]
            return (host, after.hasPrefix(":") ? Int(after.dropFirst()) ?? 443 : 443)
        }
        let parts = rest.split(separator: ":", maxSplits: 1)
        guard let host = parts.first, !host.isEmpty else { throw .configuration("no host in \"\(server)\"") }
        if parts.count == 2 {
            guard let port = Int(parts[1]), (1...65535).contains(port) else { throw .configuration("bad port in \"\(server)\"") }
            return (String(host), port)
        }
        return (String(host), 443)
    }
}

/// Reads kubeconfig files (the current context's cluster and user).
public enum Kubeconfig {
    /// The configuration of the current context of a kubeconfig document. Relative file
    /// references are resolved against `directory`.
    public static func parse(_ bytes: [UInt8], directory: String = ".") throws(KubeClientError) -> ClientConfiguration {
        let tree: JSONValue
        do {
            let documents = try KubeYAML.documents(bytes)
            guard documents.count == 1 else { throw KubeClientError.configuration("a kubeconfig must be one YAML document") }
            tree = documents[0]
        } catch let error as KubeClientError {
            throw error
        } catch {
            throw .configuration("kubeconfig: \(error)")
        }
        func named(_ list: String, _ name: String) -> JSONValue? {
            guard case .array(let items)? = tree[list] else { return nil }
            return items.first { $0["name"]?.stringValue == name }
        }
        let context: JSONValue?
        let cluster: JSONValue
        if let contextName = tree["current-context"]?.stringValue, !contextName.isEmpty {
            guard let found = named("contexts", contextName)?["context"] else { throw .configuration("kubeconfig: context \"\(contextName)\" is missing") }
            guard let clusterName = found["cluster"]?.stringValue, let foundCluster = named("clusters", clusterName)?["cluster"] else {
                throw .configuration("kubeconfig: the cluster of context \"\(contextName)\" is missing")
            }
            context = found
            cluster = foundCluster
        } else if case .array(let clusters)? = tree["clusters"], clusters.count == 1, let only = clusters[0]["cluster"] {
            // A cluster-only kubeconfig (kubeadm's cluster-info): no context, no user.
            context = nil
            cluster = only
        } else {
            throw .configuration("kubeconfig has no current-context")
        }
        guard let server = cluster["server"]?.stringValue else { throw .configuration("kubeconfig: the cluster has no server") }
        var configuration = ClientConfiguration(server: server)
        configuration.certificateAuthorityPEM = try material(cluster, data: "certificate-authority-data", file: "certificate-authority", directory: directory)
        configuration.insecureSkipVerify = cluster["insecure-skip-tls-verify"] == .bool(true)
        if let userName = context?["user"]?.stringValue, let user = named("users", userName)?["user"] {
            configuration.clientCertificatePEM = try material(user, data: "client-certificate-data", file: "client-certificate", directory: directory)
            configuration.clientKeyPEM = try material(user, data: "client-key-data", file: "client-key", directory: directory)
            configuration.bearerToken = user["token"]?.stringValue
        }
        return configuration
    }

    private static func material(_ section: JSONValue, data: String, file: String, directory: String) throws(KubeClientError) -> [UInt8]? {
        if let encoded = section[data]?.stringValue {
            guard let decoded = Data(base64Encoded: encoded) else { throw .configuration("kubeconfig: \(data) is not base64") }
            return [UInt8](decoded)
        }
        if let path = section[file]?.stringValue {
            let fullPath = path.hasPrefix("/") ? path : "\(directory)/\(path)"
            guard let bytes = try? [UInt8](Data(contentsOf: URL(fileURLWithPath: fullPath))) else {
                throw .configuration("kubeconfig: cannot read \(file) \(fullPath)")
            }
            return bytes
        }
        return nil
    }
}
