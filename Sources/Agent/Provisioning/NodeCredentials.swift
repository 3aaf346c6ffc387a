import FoundationEssentials
import KubeClient
import KubeModel
import NodeCrypto

/// Why this board's clock makes a fresh certificate unusable, or nil when it is fine. The
/// server backdates certificates by 5 minutes, so a clock about 10 minutes or more behind the
/// server (or past the certificate's end) shows here, before TLS starts failing mysteriously.
public func clockProblem(notBefore: Timestamp, notAfter: Timestamp, now: Timestamp) -> String? {
    if now.seconds + 300 < notBefore.seconds {
        return "this board's clock (\(now)) is behind the cluster's by more than \((notBefore.seconds - now.seconds) / 60) minutes: set the time (NTP) and join again"
    }
    if now >= notAfter {
        return "this board's clock (\(now)) is past the new certificate's end (\(notAfter)): set the time (NTP) and join again"
    }
    return nil
}

/// The node's client credential: a key made on the board (it never leaves it) and the
/// certificate the cluster signs for `system:node:<name>` in `system:nodes`.
public struct NodeCredentials: Sendable {
    public static let signerName = "kubernetes.io/kube-apiserver-client-kubelet"

    public var keyPEM: String
    public var certificatePEM: String

    /// The CSR annotation that carries this board's node password to iotkube-server with a
    /// bootstrap token (the server keeps only its hash and never stores the request's copy;
    /// other API servers ignore it).
    public static let passwordAnnotation = "iotkube.io/node-password"

    /// Submits a CSR with `client` (a bootstrap or node credential) and waits for the signed
    /// certificate; a denied or failed request, or `timeout` passing, is an error. `password` is
    /// the board's node password (see ``NodePassword``), sent with bootstrap requests.
    public static func request(nodeName: String, client: KubeAPIClient, password: String? = nil, timeout: Duration = .seconds(120)) async throws -> NodeCredentials {
        let key = try SigningKey()
        let requestPEM = try key.certificateRequestPEM(for: CertificateNames(commonName: "system:node:\(nodeName)", organizations: ["system:nodes"]))
        let suffix = String(UInt32.random(in: 0...UInt32.max), radix: 36)
        let csr = KubeModel.CertificateSigningRequest(
            metadata: ObjectMeta(name: "node-csr-\(nodeName)-\(suffix)", annotations: password.map { [passwordAnnotation: $0] }),
            spec: CertificateSigningRequestSpec(
                request: Array(requestPEM.utf8), signerName: signerName,
                usages: ["digital signature", "client auth"]))
        let created: KubeModel.CertificateSigningRequest
        do {
            created = try await client.create(csr)
        } catch {
            // An unauthenticated or forbidden requester is told as such (the caller says what to do).
            if error.statusCode == 401 || error.statusCode == 403 { throw error }
            throw ProvisioningError("the server refused the certificate request: \(error)")
        }
        let name = created.metadata.name ?? ""
        let deadline = ContinuousClock.now + timeout
        var current = created
        while true {
            let conditions = current.status?.conditions ?? []
            if let refusal = conditions.first(where: { $0.type == "Denied" || $0.type == "Failed" }) {
                throw ProvisioningError("certificate request \(name) was \(refusal.type.lowercased()): \(refusal.message ?? refusal.reason ?? "")")
            }
            if let certificate = current.status?.certificate, !certificate.bytes.isEmpty {
                let pem = certificate.text
                let issued = try CertificateFacts(pem: Array(pem.utf8))
                guard try issued.publicKeyDER == key.publicKeyDER() else {
                    throw ProvisioningError("the certificate issued for \(name) is not for this board's key")
                }
                if let problem = clockProblem(notBefore: Timestamp(seconds: issued.notValidBefore), notAfter: Timestamp(seconds: issued.notValidAfter), now: .now()) {
                    throw ProvisioningError(problem)
                }
                return NodeCredentials(keyPEM: try key.pemRepresentation(), certificatePEM: pem)
            }
            guard ContinuousClock.now < deadline else {
                throw ProvisioningError("certificate request \(name) was not approved within \(timeout): approve it with `kubectl certificate approve \(name)` and join again")
            }
            try await Task.sleep(for: .milliseconds(500))
            current = try await client.get(KubeModel.CertificateSigningRequest.self, name: name)
        }
    }
}
