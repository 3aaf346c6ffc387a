import Crypto
import FoundationEssentials
import KubeModel
import NIOSSL
import X509
import SystemSupport

/// The server's data directory: the CA, the serving certificate, the admin credentials, the
/// store, and the settings chosen at `init`.
///
///     DIR/pki/ca.crt ca.key server.crt server.key   (0600 keys)
///     DIR/admin.kubeconfig                           (0600)
///     DIR/state.db                                   (SQLite)
///     DIR/server.json                                (advertise address)
public struct ClusterFiles: Sendable {
    public let directory: String

    public init(directory: String) { self.directory = directory }

    public var caCertificatePath: String { "\(directory)/pki/ca.crt" }
    var caKeyPath: String { "\(directory)/pki/ca.key" }
    var serverCertificatePath: String { "\(directory)/pki/server.crt" }
    var serverKeyPath: String { "\(directory)/pki/server.key" }
    public var adminKubeconfigPath: String { "\(directory)/admin.kubeconfig" }
    public var storePath: String { "\(directory)/state.db" }
    var settingsPath: String { "\(directory)/server.json" }

    /// Whether `init` has run here.
    public var isInitialized: Bool { (try? AtomicFile.read(caCertificatePath)) != nil }

    /// Creates the CA, serving certificate, admin kubeconfig and an empty store.
    /// Refuses to overwrite an initialised directory.
    public func initialize(advertiseAddress: String, port: Int) throws {
        guard !isInitialized else { throw APIError.badRequest("\(directory) is already initialised; remove it to start a new cluster") }
        try AtomicFile.makeDirectory("\(directory)/pki")
        let authority = try CertificateAuthority.generate()
        try AtomicFile.write(try authority.certificatePEM, to: caCertificatePath, mode: 0o644)
        try AtomicFile.write(authority.keyPEM, to: caKeyPath)

        let serverKey = P256.Signing.PrivateKey()
        // Pods reach the API as the `kubernetes` service: by name and at the default service range's first address.
        var dnsNames = ["localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local", "iotkube-server"]
        var addresses: [[UInt8]] = [[127, 0, 0, 1], [10, 43, 0, 1]]
        if let bytes = ipv4Bytes(advertiseAddress) { addresses.append(bytes) } else { dnsNames.append(advertiseAddress) }
        let serving = try authority.issue(
            commonName: "iotkube-server", publicKey: .init(serverKey.publicKey), dnsNames: dnsNames, ipAddresses: addresses,
            serverAuth: true, clientAuth: false, validity: 5 * 365 * 86400)
        try AtomicFile.write(try serving.serializeAsPEM().pemString, to: serverCertificatePath, mode: 0o644)
        try AtomicFile.write(serverKey.pemRepresentation, to: serverKeyPath)

        let adminKey = P256.Signing.PrivateKey()
        let admin = try authority.issue(
            commonName: "kubernetes-admin", organizations: [Authorizer.adminGroup], publicKey: .init(adminKey.publicKey),
            serverAuth: false, clientAuth: true, validity: 365 * 86400)
        let kubeconfig = ClientKubeconfig.render(
            server: "https://\(Self.hostForURL(advertiseAddress)):\(port)", caPEM: Array(try authority.certificatePEM.utf8),
            user: "kubernetes-admin", certificatePEM: Array(try admin.serializeAsPEM().pemString.utf8), keyPEM: Array(adminKey.pemRepresentation.utf8))
        try AtomicFile.write(kubeconfig, to: adminKubeconfigPath)

        let settings: JSONValue = ["advertiseAddress": .string(advertiseAddress), "port": .integer(port)]
        try AtomicFile.write(KubeJSON.serialize(settings, pretty: true), to: settingsPath, mode: 0o644)
        _ = try ObjectStore(path: storePath)
    }

    /// `host` as a URL writes it (an IPv6 address in brackets).
    public static func hostForURL(_ host: String) -> String { host.contains(":") ? "[\(host)]" : host }

    /// The serving certificate's DNS names and IPv4 addresses (no node may be given them).
    public func serverCertificateNames() throws -> (dnsNames: [String], ipAddresses: [[UInt8]]) {
        guard let pem = try AtomicFile.read(serverCertificatePath) else { return ([], []) }
        let certificate = try Certificate(pemEncoded: String(decoding: pem, as: UTF8.self))
        var names: (dnsNames: [String], ipAddresses: [[UInt8]]) = ([], [])
        guard let alternatives = try certificate.extensions.subjectAlternativeNames else { return names }
        for name in alternatives {
            switch name {
            case .dnsName(let text): names.dnsNames.append(text)
            case .ipAddress(let bytes): names.ipAddresses.append(Array(bytes.bytes))
            default: continue
            }
        }
        return names
    }

    /// The TLS configuration for serving: our certificate, client certificates optional but
    /// verified against the cluster CA when presented.
    public func serverTLSContext() throws -> NIOSSLContext {
        guard let certificate = try AtomicFile.read(serverCertificatePath), let key = try AtomicFile.read(serverKeyPath),
              let ca = try AtomicFile.read(caCertificatePath) else {
            throw APIError.internalError("\(directory) is not initialised: run `iotkube-server init --data-dir \(directory)` first")
        }
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: try NIOSSLCertificate.fromPEMBytes(certificate).map { .certificate($0) },
            privateKey: .privateKey(try NIOSSLPrivateKey(bytes: key, format: .pem)))
        configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(ca))
        configuration.certificateVerification = .optionalVerification
        configuration.minimumTLSVersion = .tlsv12
        return try NIOSSLContext(configuration: configuration)
    }

    /// Publishes `cluster-info` in kube-public, signed with every valid bootstrap token.
    public func publishClusterInfo(server: String, store: ObjectStore) throws {
        guard let ca = try AtomicFile.read(caCertificatePath) else { throw APIError.internalError("\(directory) is not initialised") }
        try BootstrapTokens.publishClusterInfo(
            server: server, caPEM: String(decoding: ca, as: UTF8.self), tokens: try BootstrapTokens.signingTokens(in: store), in: store)
    }

    /// The cluster CA with its key (for signing node certificates).
    public func certificateAuthority() throws -> CertificateAuthority {
        guard let certificate = try AtomicFile.read(caCertificatePath), let key = try AtomicFile.read(caKeyPath) else {
            throw APIError.internalError("\(directory) is not initialised")
        }
        return try CertificateAuthority(certificatePEM: String(decoding: certificate, as: UTF8.self), keyPEM: String(decoding: key, as: UTF8.self))
    }

    /// A client certificate (and key) the API server presents to the nodes' agents when it
    /// proxies `pods/log` (the kube-apiserver's kubelet client identity), issued for this run.
    public func kubeletClientCredentials() throws -> (certificatePEM: [UInt8], keyPEM: [UInt8]) {
        let key = P256.Signing.PrivateKey()
        let certificate = try certificateAuthority().issue(
            commonName: "kube-apiserver-kubelet-client", organizations: [Authorizer.adminGroup], publicKey: .init(key.publicKey),
            serverAuth: false, clientAuth: true, validity: 365 * 86400)
        return (Array(try certificate.serializeAsPEM().pemString.utf8), Array(key.pemRepresentation.utf8))
    }

    /// `sha256:<hex>` of the cluster CA's public key (the pin join tokens carry).
    public func caPublicKeyPin() throws -> String {
        guard let pem = try AtomicFile.read(caCertificatePath) else { throw APIError.internalError("\(directory) is not initialised") }
        return try CertificateAuthority.publicKeyPin(of: try Certificate(pemEncoded: String(decoding: pem, as: UTF8.self)))
    }

    /// The settings written by `init`.
    public func settings() throws -> (advertiseAddress: String, port: Int) {
        guard let bytes = try AtomicFile.read(settingsPath) else { return ("127.0.0.1", 6443) }
        let tree = try KubeJSON.parse(bytes)
        return (tree.string(at: ["advertiseAddress"]) ?? "127.0.0.1", Int(tree.int64(at: ["port"]) ?? 6443))
    }
}
