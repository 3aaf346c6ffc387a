import FoundationEssentials
import KubeClient
import KubeModel
import NodeCrypto
import Synchronization
import SystemSupport

/// Renews the node's client certificate before it expires, without restarting anything:
/// when 70–90 % (jittered per certificate) of its life has passed, a new key and CSR are made,
/// the cluster signs it (node self-renewals are auto-approved), the kubeconfig is replaced
/// atomically and the API client is swapped. A certificate's age is counted on the boot clock
/// from when it was taken into use: a wall-clock jump (NTP on a board without a real-time clock)
/// neither renews it early, again and again, nor takes it for expired.
public final class CertificateRotation: Sendable {
    private struct State {
        var client: KubeAPIClient
        var notBefore: Timestamp
        var notAfter: Timestamp
        /// When (seconds since boot) the certificate's life began: placed on the boot clock
        /// once, from the wall clock when it was loaded, or when it was issued.
        var issuedAtBoot: Int64
        /// Seconds into its life when it is renewed.
        var renewAfter: Int64
        /// Its life in seconds.
        var life: Int64 { max(0, notAfter.seconds.subtractingReportingOverflow(notBefore.seconds).partialValue) }
    }

    let configuration: AgentConfiguration
    let kubeconfigDirectory: String
    /// Overrides the jittered threshold: renew this many seconds after a certificate is taken
    /// into use (for tests and operators).
    let renewAfterSeconds: Int64?
    let clock: PodClock
    private let state: Mutex<State>

    public init(configuration: AgentConfiguration, clientConfiguration: ClientConfiguration, renewAfterSeconds: Int64? = nil,
                clock: PodClock = .system) throws {
        self.configuration = configuration
        self.renewAfterSeconds = renewAfterSeconds
        self.clock = clock
        let parts = configuration.kubeconfig.split(separator: "/", omittingEmptySubsequences: false).dropLast()
        kubeconfigDirectory = parts.isEmpty ? "." : parts.joined(separator: "/")
        let (notBefore, notAfter) = try Self.validity(of: clientConfiguration)
        let now = clock.sinceBoot(), issued = clock.sinceBoot(ofWall: notBefore)
        var state = State(client: try KubeAPIClient(configuration: clientConfiguration), notBefore: notBefore, notAfter: notAfter,
                          issuedAtBoot: issued, renewAfter: 0)
        state.renewAfter = Self.renewalPoint(life: state.life, inUseAfter: now - issued, override: renewAfterSeconds)
        self.state = Mutex(state)
    }

    /// Seconds into a certificate's life when it is renewed: a random point between 70 and 90 %,
    /// or `override` seconds after it is taken into use (`inUseAfter` seconds into its life).
    static func renewalPoint(life: Int64, inUseAfter: Int64, override: Int64?) -> Int64 {
        if let override { return max(0, inUseAfter) + min(max(0, override), 366 * 86_400) }
        return Int64(Double(life) * Double.random(in: 0.7...0.9))
    }

    /// Seconds since the certificate's life began, on the boot clock.
    var age: Int64 { state.withLock { clock.sinceBoot() - $0.issuedAtBoot } }

    /// The certificate's life is over (counted on the boot clock since it was taken into use).
    public var isExpired: Bool { state.withLock { clock.sinceBoot() - $0.issuedAtBoot >= $0.life } }

    /// The certificate is due for renewal.
    public var isRenewalDue: Bool { state.withLock { clock.sinceBoot() - $0.issuedAtBoot >= $0.renewAfter } }

    /// The client with the current certificate.
    public var client: KubeAPIClient { state.withLock { $0.client } }
    public var expiry: Timestamp { state.withLock { $0.notAfter } }

    /// The certificate expired (the board was offline past its end): a new one is requested with
    /// the bootstrap token join kept, as the kubelet does with its bootstrap kubeconfig. Without a
    /// usable token the error says what to do.
    func rebootstrap(expiredAt notAfter: Timestamp, log: @Sendable (String) -> Void) async throws -> NodeCredentials {
        let rejoin = "join again with a new token: `iotkube-agent join --force <token>` (from `iotkube-server token create` or `kubeadm token create`)"
        guard let path = configuration.bootstrapKubeconfig, let bytes = try AtomicFile.read(path) else {
            throw ProvisioningError("the client certificate expired at \(notAfter) and there is no bootstrap kubeconfig to renew it with: \(rejoin)")
        }
        let directory = String(path.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/"))
        let bootstrap = try KubeAPIClient(configuration: try Kubeconfig.parse(bytes, directory: directory.isEmpty ? "." : directory))
        log("the client certificate expired at \(notAfter): requesting a new one with the bootstrap token in \(path)")
        do {
            // The node password kept with the kubeconfig (the configuration directory).
            let password = try NodePassword.loadOrCreate(configDirectory: kubeconfigDirectory)
            return try await NodeCredentials.request(nodeName: configuration.nodeName, client: bootstrap, password: password)
        } catch let error as KubeClientError where error.statusCode == 401 || error.statusCode == 403 {
            throw ProvisioningError("the client certificate expired at \(notAfter) and the bootstrap token in \(path) is no longer accepted (\(error)): \(rejoin)")
        }
    }

    static func validity(of configuration: ClientConfiguration) throws -> (Timestamp, Timestamp) {
        guard let pem = configuration.clientCertificatePEM else { throw ProvisioningError("the kubeconfig has no client certificate") }
        let certificate = try CertificateFacts(pem: pem)
        return (Timestamp(seconds: certificate.notValidBefore), Timestamp(seconds: certificate.notValidAfter))
    }

    /// Renews if due; returns whether a new certificate is now in use.
    @discardableResult
    public func renewIfDue(log: @Sendable (String) -> Void) async throws -> Bool {
        let (client, notAfter) = state.withLock { ($0.client, $0.notAfter) }
        guard isRenewalDue else { return false }
        let credentials: NodeCredentials
        if isExpired {
            credentials = try await rebootstrap(expiredAt: notAfter, log: log)
        } else {
            // The password goes with renewals too: a board joined before node passwords gets
            // its name's record this way (the server records it for the node itself only).
            let password = try? NodePassword.loadOrCreate(configDirectory: kubeconfigDirectory)
            credentials = try await NodeCredentials.request(nodeName: configuration.nodeName, client: client, password: password)
        }
        guard let old = try AtomicFile.read(configuration.kubeconfig) else { throw ProvisioningError("\(configuration.kubeconfig) disappeared") }
        var renewedConfiguration = try Kubeconfig.parse(old, directory: kubeconfigDirectory)
        renewedConfiguration.clientCertificatePEM = Array(credentials.certificatePEM.utf8)
        renewedConfiguration.clientKeyPEM = Array(credentials.keyPEM.utf8)
        guard let ca = renewedConfiguration.certificateAuthorityPEM else { throw ProvisioningError("the kubeconfig has no CA") }
        let text = Joiner.kubeconfig(server: renewedConfiguration.server, caPEM: ca, nodeName: configuration.nodeName, credentials: credentials)
        try AtomicFile.write(text, to: configuration.kubeconfig, mode: 0o600)
        let (notBefore, newNotAfter) = try Self.validity(of: renewedConfiguration)
        let newClient = try KubeAPIClient(configuration: renewedConfiguration)
        state.withLock {
            $0.client = newClient
            $0.notBefore = notBefore
            $0.notAfter = newNotAfter
            // Issued just now, whatever the wall clock says.
            $0.issuedAtBoot = clock.sinceBoot()
            $0.renewAfter = Self.renewalPoint(life: $0.life, inUseAfter: 0, override: renewAfterSeconds)
        }
        log("renewed the client certificate; it now expires at \(newNotAfter)")
        return true
    }
}
