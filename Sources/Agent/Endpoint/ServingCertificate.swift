import FoundationEssentials
import NIOCore
import NIOSSL
import NodeCrypto
import Synchronization
import SystemSupport

/// The agent endpoint's serving certificate. As the kubelet with `serverTLSBootstrap`, the
/// agent asks the cluster to sign one for `system:node:<name>` (``ServingCertificateService``)
/// and serves a self-signed one until it is issued — the API server refuses that one, so
/// `kubectl logs` works once the cluster signed. The signed certificate is kept in the state
/// directory (key 0600) for the next start; each TLS hello takes the current certificate.
public final class ServingCertificate: Sendable {
    /// A certificate in use and its key.
    struct Identity: Sendable {
        var certificate: CertificateFacts
        var certificatePEM: String
        var keyPEM: String
        /// Whether the cluster CA signed it (false: self-signed).
        var clusterSigned: Bool
    }

    let nodeName: String
    let addresses: [String]
    let certificatePath: String
    let keyPath: String
    private let current: Mutex<Identity>

    /// Takes the stored cluster-signed certificate when it is still valid for `nodeName` and
    /// `addresses`, else makes a self-signed one.
    public init(nodeName: String, addresses: [String], stateDirectory: String) throws {
        self.nodeName = nodeName
        self.addresses = addresses
        certificatePath = stateDirectory + "/pki/kubelet-serving.crt"
        keyPath = stateDirectory + "/pki/kubelet-serving.key"
        var identity = try Self.selfSigned(nodeName: nodeName, addresses: addresses)
        if let certificate = try? AtomicFile.read(certificatePath), let key = try? AtomicFile.read(keyPath),
           let stored = try? Self.signed(String(decoding: certificate, as: UTF8.self), keyPEM: String(decoding: key, as: UTF8.self)),
           Self.problem(stored.certificate, nodeName: nodeName, addresses: addresses, now: Date()) == nil {
            identity = stored
        }
        current = Mutex(identity)
    }

    var identity: Identity { current.withLock { $0 } }

    /// Whether a cluster-signed certificate is in use and not yet due for renewal (80 % of its life).
    func signedAndFresh(now: Date) -> Bool {
        let identity = self.identity
        guard identity.clusterSigned else { return false }
        let start = Double(identity.certificate.notValidBefore), end = Double(identity.certificate.notValidAfter)
        return now.timeIntervalSince1970 < start + (end - start) * 0.8
            && Self.problem(identity.certificate, nodeName: nodeName, addresses: addresses, now: now) == nil
    }

    /// Stores a certificate the cluster signed and serves it from the next connection on.
    func install(certificatePEM: String, keyPEM: String) throws {
        let identity = try Self.signed(certificatePEM, keyPEM: keyPEM)
        if let problem = Self.problem(identity.certificate, nodeName: nodeName, addresses: addresses, now: Date()) {
            throw ProvisioningError("the issued serving certificate does not fit this node: \(problem)")
        }
        try FileTree.makeDirectories(String(keyPath.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")), mode: 0o700)
        try AtomicFile.write(keyPEM, to: keyPath, mode: 0o600)
        try AtomicFile.write(certificatePEM, to: certificatePath, mode: 0o644)
        current.withLock { $0 = identity }
    }

    /// The endpoint's TLS: the current certificate per connection; client certificates are
    /// verified against the cluster CA when presented.
    public func tlsContext(clusterCAPEM: [UInt8]) throws -> NIOSSLContext {
        let start = identity
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: [.certificate(try NIOSSLCertificate(bytes: Array(start.certificatePEM.utf8), format: .pem))],
            privateKey: .privateKey(try NIOSSLPrivateKey(bytes: Array(start.keyPEM.utf8), format: .pem)))
        configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(clusterCAPEM))
        configuration.certificateVerification = .optionalVerification
        configuration.minimumTLSVersion = .tlsv12
        configuration.sslContextCallback = { [self] _, promise in
            let identity = self.identity
            do {
                var override = NIOSSLContextConfigurationOverride()
                override.certificateChain = [.certificate(try NIOSSLCertificate(bytes: Array(identity.certificatePEM.utf8), format: .pem))]
                override.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: Array(identity.keyPEM.utf8), format: .pem))
                promise.succeed(override)
            } catch {
                promise.fail(error)
            }
        }
        return try NIOSSLContext(configuration: configuration)
    }

    /// Why a certificate does not serve this node now (expired, another name, an address
    /// missing), or nil.
    static func problem(_ certificate: CertificateFacts, nodeName: String, addresses: [String], now: Date) -> String? {
        let seconds = now.timeIntervalSince1970
        guard seconds >= Double(certificate.notValidBefore), seconds < Double(certificate.notValidAfter) else { return "it is not valid now" }
        guard certificate.commonNames == ["system:node:\(nodeName)"] else {
            return "it is for CN=\(certificate.commonNames.joined(separator: ",")), not system:node:\(nodeName)"
        }
        for address in addresses {
            guard let bytes = ipv4Bytes(address), certificate.ipAddresses.contains(bytes) else {
                return "it does not cover \(address)"
            }
        }
        return nil
    }

    static func signed(_ certificatePEM: String, keyPEM: String) throws -> Identity {
        Identity(certificate: try CertificateFacts(pem: Array(certificatePEM.utf8)), certificatePEM: certificatePEM, keyPEM: keyPEM, clusterSigned: true)
    }

    /// A self-signed certificate for the node's name and IPv4 addresses (the kubelet's default).
    static func selfSigned(nodeName: String, addresses: [String]) throws -> Identity {
        let key = try SigningKey()
        let names = CertificateNames(
            commonName: "\(nodeName)@iotkube-agent", dnsNames: [nodeName, "localhost"],
            ipv4Addresses: [[127, 0, 0, 1]] + addresses.compactMap(ipv4Bytes))
        let now = Int64(Date().timeIntervalSince1970)
        let pem = try key.selfSignedCertificatePEM(for: names, validFrom: now - 300, until: now + 365 * 86400)
        return Identity(certificate: try CertificateFacts(pem: Array(pem.utf8)), certificatePEM: pem,
                        keyPEM: try key.pemRepresentation(), clusterSigned: false)
    }

    /// Dotted IPv4 text as bytes; nil when it is not one.
    static func ipv4Bytes(_ text: String) -> [UInt8]? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        let bytes = parts.compactMap { UInt8($0) }
        return bytes.count == 4 ? bytes : nil
    }
}
