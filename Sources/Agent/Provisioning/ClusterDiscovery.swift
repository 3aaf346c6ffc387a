import FoundationEssentials
import KubeClient
import KubeModel
import NodeCrypto

/// Finds and authenticates the cluster before any secret is sent: reads the public
/// `cluster-info` ConfigMap over TLS without trusting anything yet, then accepts its CA only if
/// the CA's public key matches the pin from the token and the kubeconfig carries a valid JWS
/// signature made with the bootstrap token (kubeadm's token discovery).
public enum ClusterDiscovery {
    /// The cluster's CA certificate (PEM) once it passed both checks.
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
        let pin = try publicKeyPinHex(ofCertificatePEM: caPEM)
        guard Base64URL.constantTimeEqual(Array(pin.utf8), Array(pinHex.lowercased().utf8)) else {
            throw ProvisioningError("the server's CA (sha256:\(pin)) does not match the pin in the token (sha256:\(pinHex)): refusing to join; nothing was sent")
        }
        guard let signature = clusterInfo.data?["jws-kubeconfig-\(token.id)"] else {
            throw ProvisioningError("cluster-info is not signed with token \(token.id): the token is unknown or expired on the server")
        }
        guard verifyDetachedJWS(signature, payload: kubeconfig, token: token) else {
            throw ProvisioningError("the cluster-info signature does not match the token: refusing to join")
        }
        return caPEM
    }

    /// The hex SHA-256 of a certificate's SubjectPublicKeyInfo.
    public static func publicKeyPinHex(ofCertificatePEM pem: [UInt8]) throws -> String {
        let certificate = try CertificateFacts(pem: pem)
        return StreamingDigest.hex(StreamingDigest.hash(.sha256, certificate.publicKeyDER))
    }

    /// Checks `<header>..<signature>` (HS256, keyed with `<id>.<secret>`) over the payload.
    static func verifyDetachedJWS(_ jws: String, payload: String, token: BootstrapToken) -> Bool {
        let parts = jws.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[1].isEmpty, let signature = Base64URL.decode(String(parts[2])) else { return false }
        let signingInput = String(parts[0]) + "." + Base64URL.encode(Array(payload.utf8))
        return MessageAuthentication.isValidSHA256(signature, message: Array(signingInput.utf8), key: Array(token.description.utf8))
    }
}
