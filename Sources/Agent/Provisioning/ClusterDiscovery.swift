import FoundationEssentials
import KubeClient
import KubeModel
import NodeCrypto

/// Finds and authenticates the cluster before any secret is sent: reads the public
/// `cluster-info` ConfigMap over TLS without trusting anything yet, then accepts its CA only if
/// the CA's public key matches the pin from the token and the kubeconfig carries a valid JWS
/// signature made with the bootstrap token (kubeadm's token discovery).
public enum ClusterDiscovery {
    /// The cluster's CA certificate (PEM) once it passed both checks: only the certificates of the
    /// bundle whose public key the pin names and those that issued them.
    public static func discoverCA(server: String, pinHex: String, token: BootstrapToken) async throws -> [UInt8] {
        var configuration = ClientConfiguration(server: server)
        configuration.insecureSkipVerify = true  // nothing secret is sent on this connection
        let client = try KubeAPIClient(configuration: configuration)
        let clusterInfo: ConfigMap
        do {
            clusterInfo = try await client.get(ConfigMap.self, namespace: "kube-public", name: "cluster-info")
        } catch {
            throw ProvisioningError("cannot read cluster-info from \(server): \(error)")
        }
        guard let kubeconfig = clusterInfo.data?["kubeconfig"] else {
            throw ProvisioningError("the server's cluster-info has no kubeconfig: is \(server) a Kubernetes API server?")
        }
        let discovered = try Kubeconfig.parse(Array(kubeconfig.utf8))
        guard let caPEM = discovered.certificateAuthorityPEM else { throw ProvisioningError("cluster-info carries no CA certificate") }
        // Only the certificates the pin names, and those that issued them, are trusted: a token
        // holder without the CA's key could add a CA of their own to the bundle.
        let bundle: [(facts: CertificateFacts, pem: String)]
        do { bundle = try CertificateFacts.all(inPEM: caPEM) } catch { throw ProvisioningError("cluster-info's CA certificate: \(error)") }
        guard !bundle.isEmpty else { throw ProvisioningError("cluster-info carries no CA certificate") }
        let trusted = trustedCertificates(of: bundle, pinHex: pinHex)
        guard !trusted.isEmpty else {
            let found = bundle.prefix(3).map { "sha256:\(publicKeyPinHex(of: $0.facts))" }.joined(separator: ", ") + (bundle.count > 3 ? ", …" : "")
            throw ProvisioningError("the server's CA (\(found)) does not match the pin in the token (sha256:\(pinHex)): refusing to join; nothing was sent")
        }
        guard let signature = clusterInfo.data?["jws-kubeconfig-\(token.id)"] else {
            throw ProvisioningError("cluster-info is not signed with token \(token.id): the token is unknown or expired on the server")
        }
        guard verifyDetachedJWS(signature, payload: kubeconfig, token: token) else {
            throw ProvisioningError("the cluster-info signature does not match the token: refusing to join")
        }
        return Array(trusted.joined().utf8)
    }

    /// The PEMs of a CA bundle's certificates whose public key the pin names, and of those
    /// that issued them (the pinned CA may be an intermediate whose root TLS needs as anchor),
    /// in the bundle's order. Issuing is checked by signature, so a certificate that only
    /// claims the issuer's name is left out; one that is neither (a CA being rotated in) is
    /// left out too.
    static func trustedCertificates(of bundle: [(facts: CertificateFacts, pem: String)], pinHex: String) -> [String] {
        let expected = Array(pinHex.lowercased().utf8)
        var trusted = Set(bundle.indices.filter { Base64URL.constantTimeEqual(Array(publicKeyPinHex(of: bundle[$0].facts).utf8), expected) })
        guard !trusted.isEmpty else { return [] }
        // Upward from the pinned ones: each trusted certificate's issuers become trusted too.
        var pending = Array(trusted)
        while let next = pending.popLast() {
            for candidate in bundle.indices where !trusted.contains(candidate) && CertificateFacts.isIssued(bundle[next].pem, by: bundle[candidate].pem) {
                trusted.insert(candidate)
                pending.append(candidate)
            }
        }
        return bundle.indices.filter(trusted.contains).map { bundle[$0].pem }
    }

    /// The hex SHA-256 of a parsed certificate's SubjectPublicKeyInfo.
    static func publicKeyPinHex(of certificate: CertificateFacts) -> String {
        StreamingDigest.hex(StreamingDigest.hash(.sha256, certificate.publicKeyDER))
    }

    /// Checks `<header>..<signature>` (HS256, keyed with `<id>.<secret>`) over the payload.
    static func verifyDetachedJWS(_ jws: String, payload: String, token: BootstrapToken) -> Bool {
        let parts = jws.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[1].isEmpty, let signature = Base64URL.decode(String(parts[2])) else { return false }
        let signingInput = String(parts[0]) + "." + Base64URL.encode(Array(payload.utf8))
        return MessageAuthentication.isValidSHA256(signature, message: Array(signingInput.utf8), key: Array(token.description.utf8))
    }
}
