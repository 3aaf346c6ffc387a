import FoundationEssentials
import KubeClient
import KubeModel
import Logging
import NodeCrypto
import ServiceLifecycle

/// Gets the endpoint's serving certificate signed by the cluster, as the kubelet's
/// `serverTLSBootstrap`: once the Node is registered, a CSR with signer
/// `kubernetes.io/kubelet-serving` for `system:node:<name>` / `system:nodes` and the node's name
/// and IPs; the issued certificate replaces the self-signed one. A request left pending (a
/// cluster without an approver) is asked about again, and replaced after an hour; a signed
/// certificate is renewed at 80 % of its life.
public struct ServingCertificateService: Service {
    static let usages = ["digital signature", "server auth"]

    let certificate: ServingCertificate
    let client: @Sendable () -> KubeAPIClient?
    let logger: Logger
    let interval: Duration

    public init(certificate: ServingCertificate, client: @escaping @Sendable () -> KubeAPIClient?, logger: Logger, interval: Duration = .seconds(10)) {
        self.certificate = certificate
        self.client = client
        self.logger = logger
        self.interval = interval
    }

    /// A request made and not yet answered.
    struct Pending {
        var name: String
        var key: SigningKey
        var made: ContinuousClock.Instant
    }

    public func run() async throws {
        var pending: Pending?
        var lastProblem = ""
        let started = ContinuousClock.now
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            if !certificate.signedAndFresh(now: Date()), let client = client() {
                do {
                    pending = try await step(pending, client: client)
                    lastProblem = ""
                } catch {
                    let problem = "\(error)"
                    if problem != lastProblem { logger.warning("serving certificate: \(problem) (retrying)") }
                    lastProblem = problem
                }
            }
            // Right after start (registration under way, approval within a moment) ask often.
            let soon = !certificate.identity.clusterSigned && ContinuousClock.now - started < .seconds(120)
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: soon ? .milliseconds(500) : interval) }
        }
    }

    /// Makes a request when none is pending, or looks at the pending one: installs what was
    /// issued, drops what was denied or waited on for an hour. Returns what is still pending.
    func step(_ pending: Pending?, client: KubeAPIClient) async throws -> Pending? {
        guard let pending, ContinuousClock.now - pending.made < .seconds(3600) else {
            // The server approves only names its Node lists: wait for the registration.
            let node: Node
            do { node = try await client.get(Node.self, name: certificate.nodeName) } catch {
                if error.statusCode == 404 { return nil }
                throw error
            }
            let listed = Set((node.status?.addresses ?? []).map(\.address))
            guard certificate.addresses.allSatisfy(listed.contains) else { return nil }
            return try await request(client)
        }
        let csr = try await client.get(KubeModel.CertificateSigningRequest.self, name: pending.name)
        if let refusal = csr.status?.conditions?.first(where: { $0.type == "Denied" || $0.type == "Failed" }) {
            logger.warning("serving certificate request \(pending.name) was \(refusal.type.lowercased()): \(refusal.message ?? refusal.reason ?? "")")
            return nil
        }
        guard let issued = csr.status?.certificate, !issued.bytes.isEmpty else { return pending }
        guard try CertificateFacts(pem: issued.bytes).publicKeyDER == pending.key.publicKeyDER() else {
            throw ProvisioningError("the certificate issued for \(pending.name) is not for this request's key")
        }
        try certificate.install(certificatePEM: issued.text, keyPEM: try pending.key.pemRepresentation())
        logger.info("serving certificate signed by the cluster (\(pending.name)): the endpoint uses it now")
        return nil
    }

    /// Submits a new request for this node's names; returns it while it is pending.
    func request(_ client: KubeAPIClient) async throws -> Pending? {
        let key = try SigningKey()
        let nodeName = certificate.nodeName
        let requestPEM = try key.certificateRequestPEM(for: CertificateNames(
            commonName: "system:node:\(nodeName)", organizations: ["system:nodes"], dnsNames: [nodeName],
            ipv4Addresses: certificate.addresses.compactMap(ServingCertificate.ipv4Bytes)))
        let suffix = String(UInt32.random(in: 0...UInt32.max), radix: 36)
        let csr = KubeModel.CertificateSigningRequest(
            metadata: ObjectMeta(name: "csr-serving-\(nodeName)-\(suffix)"),
            spec: CertificateSigningRequestSpec(
                request: Array(requestPEM.utf8), signerName: "kubernetes.io/kubelet-serving", usages: Self.usages))
        let created = try await client.create(csr)
        let name = created.metadata.name ?? ""
        logger.info("requested a serving certificate from the cluster (\(name))")
        let made = Pending(name: name, key: key, made: .now)
        // Auto-approval happens on creation: take the certificate at once when it is there.
        return try await step(made, client: client)
    }
}
