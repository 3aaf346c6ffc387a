import Crypto
import Foundation
import IotkubeTestSupport
import KubeModel
import SwiftASN1
import Testing
import X509

@testable import ControlPlane

/// The server's connection to an agent for `pods/log`, attacked over real HTTPS: a fake agent
/// (a Python HTTPS listener) stands at the address a Node names. The server sends only
/// validated, escaped options, and talks only to an agent whose serving certificate the
/// cluster CA signed for that node; the CA signs one only for a node's own names.
@Suite(.ownThread, .serialized)
struct KubeletServingTests {
    static let fakeAgent = """
        import http.server, ssl, sys
        certificate, key, requests = sys.argv[1:4]
        class Agent(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                with open(requests, "a") as f:
                    f.write(self.path + "\\n")
                body = b"forged log line\\n"
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            def log_message(self, *arguments):
                pass
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Agent)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(certificate, key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        print(server.server_address[1], flush=True)
        server.serve_forever()
        """

    /// A fake agent serving `certificate` (PEM) with `key`; returns it, its port and the file
    /// of request paths it received.
    static func startFakeAgent(_ server: ServerProcess, _ label: String, certificate: Certificate, key: P256.Signing.PrivateKey) throws -> (BackgroundProcess, Int, URL) {
        let directory = server.directory
        let script = directory.appendingPathComponent("fake-agent.py")
        try fakeAgent.write(to: script, atomically: true, encoding: .utf8)
        let certificateFile = directory.appendingPathComponent("\(label)-serving.crt"), keyFile = directory.appendingPathComponent("\(label)-serving.key")
        try certificate.serializeAsPEM().pemString.write(to: certificateFile, atomically: true, encoding: .utf8)
        try key.pemRepresentation.write(to: keyFile, atomically: true, encoding: .utf8)
        let requests = directory.appendingPathComponent("\(label)-requests.txt")
        FileManager.default.createFile(atPath: requests.path, contents: nil)
        let python = try #require(ServerProcess.findExecutable("python3"))
        let process = try BackgroundProcess(python, [script.path, certificateFile.path, keyFile.path, requests.path],
                                            logPath: directory.appendingPathComponent("\(label).log").path, captureFirstLine: true)
        let port = try #require(Int(process.firstLine()), "the fake agent did not start")
        return (process, port, requests)
    }

    static func authority(_ server: ServerProcess) throws -> CertificateAuthority {
        let pki = server.directory.appendingPathComponent("pki")
        return try CertificateAuthority(certificatePEM: try String(contentsOf: pki.appendingPathComponent("ca.crt"), encoding: .utf8),
                                        keyPEM: try String(contentsOf: pki.appendingPathComponent("ca.key"), encoding: .utf8))
    }

    /// A serving certificate from the cluster CA for `system:node:<node>` at 127.0.0.1.
    static func servingCertificate(_ server: ServerProcess, node: String) throws -> (Certificate, P256.Signing.PrivateKey) {
        let key = P256.Signing.PrivateKey()
        let certificate = try authority(server).issue(
            commonName: "system:node:\(node)", organizations: ["system:nodes"], publicKey: .init(key.publicKey),
            dnsNames: [node], ipAddresses: [[127, 0, 0, 1]], serverAuth: true, clientAuth: false, validity: 3600)
        return (certificate, key)
    }

    /// Registers node `pi1` with its agent at 127.0.0.1:`port` and a pod `p` with container `c` on it.
    static func registerNode(_ admin: ClusterCaller, port: Int) throws {
        #expect(try admin.post("/api/v1/nodes", #"{"apiVersion":"v1","kind":"Node","metadata":{"name":"pi1"}}"#).status == 201)
        let status = #"{"status":{"addresses":[{"type":"InternalIP","address":"127.0.0.1"},{"type":"Hostname","address":"pi1"}],"daemonEndpoints":{"kubeletEndpoint":{"Port":\#(port)}}}}"#
        #expect(try admin.mergePatch("/api/v1/nodes/pi1/status", status).status == 200)
        #expect(try admin.post("/api/v1/namespaces/default/pods", #"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"nodeName":"pi1","containers":[{"name":"c","image":"busybox"}]}}"#).status == 201)
    }

    static func requests(_ file: URL) -> [String] {
        ((try? String(contentsOf: file, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    @Test(.enabled(if: toolAvailable("python3") && toolAvailable("curl"), "python3 or curl is not installed"))
    func logOptionsAreValidatedAndEscapedBeforeTheAgent() throws {
        let server = try ServerProcess()
        let admin = try ClusterCaller.admin(server)
        let (certificate, key) = try Self.servingCertificate(server, node: "pi1")
        let (agent, port, requests) = try Self.startFakeAgent(server, "pi1", certificate: certificate, key: key)
        defer { agent.stop() }
        try Self.registerNode(admin, port: port)

        let refused: [(String, Int, String)] = [
            ("tailLines=5%26follow%3Dtrue", 400, #"strconv.ParseInt: parsing "5&follow=true": invalid syntax"#),
            ("limitBytes=1%26previous%3Dtrue", 400, "invalid syntax"),
            ("tailLines=99999999999999999999", 400, "value out of range"),
            ("follow=yes", 400, #"strconv.ParseBool: parsing "yes": invalid syntax"#),
            ("tailLines=-1", 422, #"PodLogOptions "p" is invalid: [tailLines: Invalid value: -1: must be greater than or equal to 0]"#),
            ("limitBytes=0", 422, "limitBytes: Invalid value: 0: must be greater than 0"),
            ("sinceSeconds=0", 422, "sinceSeconds: Invalid value: 0: must be greater than 0"),
            ("container=c%2F..%2F..%2Fmetrics", 400, "is not valid for pod p"),
            ("container=c%3Ffollow%3Dtrue", 400, "is not valid for pod p"),
        ]
        for (query, status, message) in refused {
            let answer = try admin.get("/api/v1/namespaces/default/pods/p/log?\(query)")
            #expect(answer.status == status && answer.message.contains(message), "\(query): \(answer.body)")
        }
        let invalid = try admin.get("/api/v1/namespaces/default/pods/p/log?tailLines=-1").json
        #expect(invalid?[path: ["details", "causes"]].flatMap { if case .array(let causes) = $0 { causes.first?.string(at: ["field"]) } else { nil } } == "tailLines")
        #expect(Self.requests(requests).isEmpty, "\(Self.requests(requests))")

        // Valid options reach the agent as parsed values under the escaped container path.
        let answer = try admin.get("/api/v1/namespaces/default/pods/p/log?tailLines=5&timestamps=1&limitBytes=100&previous=false")
        #expect(answer.status == 200 && answer.body == "forged log line\n", "\(answer.body)")
        #expect(Self.requests(requests) == ["/containerLogs/default/p/c?timestamps=true&tailLines=5&limitBytes=100"])
    }

    @Test(.enabled(if: toolAvailable("python3") && toolAvailable("curl"), "python3 or curl is not installed"))
    func anAgentThatCannotProveItIsTheNodeIsRefused() throws {
        let server = try ServerProcess()
        let admin = try ClusterCaller.admin(server)
        // A listener with a self-signed certificate (the attacker's, or an old agent's).
        let selfSignedKey = P256.Signing.PrivateKey()
        let selfSigned = try CertificateAuthority.generate(commonName: "system:node:pi1").issue(
            commonName: "system:node:pi1", organizations: ["system:nodes"], publicKey: .init(selfSignedKey.publicKey),
            dnsNames: ["pi1"], ipAddresses: [[127, 0, 0, 1]], serverAuth: true, clientAuth: false, validity: 3600)
        let (impostor, port, requests) = try Self.startFakeAgent(server, "impostor", certificate: selfSigned, key: selfSignedKey)
        defer { impostor.stop() }
        try Self.registerNode(admin, port: port)
        let refused = try admin.get("/api/v1/namespaces/default/pods/p/log")
        #expect(refused.status == 502, "\(refused.body)")
        #expect(refused.message.contains("did not prove it is that node") && refused.message.contains("CERTIFICATE_VERIFY_FAILED"), "\(refused.body)")
        #expect(!refused.body.contains("forged log line"))
        let followed = try admin.get("/api/v1/namespaces/default/pods/p/log?follow=true")
        #expect(followed.body.contains("did not prove it is that node") && !followed.body.contains("forged log line"), "\(followed.body)")
        #expect(Self.requests(requests).isEmpty)

        // Another node's genuine serving certificate, at this node's address: refused too.
        let (otherCertificate, otherKey) = try Self.servingCertificate(server, node: "pi2")
        let (other, otherPort, otherRequests) = try Self.startFakeAgent(server, "pi2", certificate: otherCertificate, key: otherKey)
        defer { other.stop() }
        let moved = #"{"status":{"daemonEndpoints":{"kubeletEndpoint":{"Port":\#(otherPort)}}}}"#
        #expect(try admin.mergePatch("/api/v1/nodes/pi1/status", moved).status == 200)
        let wrongNode = try admin.get("/api/v1/namespaces/default/pods/p/log")
        #expect(wrongNode.status == 502 && wrongNode.message.contains("names system:node:pi2"), "\(wrongNode.body)")
        #expect(Self.requests(otherRequests).isEmpty)
    }

    @Test(.enabled(if: toolAvailable("curl"), "curl is not installed"))
    func servingCertificatesAreSignedOnlyForTheNodesOwnNames() throws {
        let server = try ServerProcess()
        let admin = try ClusterCaller.admin(server)
        let node = try ClusterCaller.node(server, "pi1")
        #expect(try node.post("/api/v1/nodes", #"{"apiVersion":"v1","kind":"Node","metadata":{"name":"pi1"}}"#).status == 201)
        #expect(try node.mergePatch("/api/v1/nodes/pi1/status", #"{"status":{"addresses":[{"type":"InternalIP","address":"10.0.0.5"},{"type":"Hostname","address":"pi1"}]}}"#).status == 200)
        #expect(try admin.post("/api/v1/nodes", #"{"apiVersion":"v1","kind":"Node","metadata":{"name":"pi2"}}"#).status == 201)
        #expect(try admin.mergePatch("/api/v1/nodes/pi2/status", #"{"status":{"addresses":[{"type":"InternalIP","address":"10.0.0.6"}]}}"#).status == 200)

        func request(_ name: String, by caller: ClusterCaller, commonName: String = "system:node:pi1", dns: [String] = ["pi1"],
                     ips: [[UInt8]] = [[10, 0, 0, 5]], usages: String = #"["digital signature","server auth"]"#) throws -> JSONValue? {
            let key = P256.Signing.PrivateKey()
            let subject = try DistinguishedName {
                OrganizationName("system:nodes")
                CommonName(commonName)
            }
            let names = dns.map { GeneralName.dnsName($0) } + ips.map { GeneralName.ipAddress(ASN1OctetString(contentBytes: ArraySlice($0))) }
            let extensions = try Certificate.Extensions { SubjectAlternativeNames(names) }
            let csr = try X509.CertificateSigningRequest(
                version: .v1, subject: subject, privateKey: .init(key),
                attributes: try CertificateSigningRequest.Attributes([.init(ExtensionRequest(extensions: extensions))]))
            let pem = Data(try csr.serializeAsPEM().pemString.utf8).base64EncodedString()
            let body = #"{"apiVersion":"certificates.k8s.io/v1","kind":"CertificateSigningRequest","metadata":{"name":"\#(name)"},"spec":{"request":"\#(pem)","signerName":"kubernetes.io/kubelet-serving","usages":\#(usages)}}"#
            let answer = try caller.post("/apis/certificates.k8s.io/v1/certificatesigningrequests", body)
            #expect(answer.status == 201, "\(name): \(answer.body)")
            return answer.json
        }
        let own = try request("own", by: node)
        let issued = try #require(own?.string(at: ["status", "certificate"]).flatMap { Data(base64Encoded: $0) }, "\(String(describing: own))")
        let certificate = try Certificate(pemEncoded: String(decoding: issued, as: UTF8.self))
        #expect(KubeletServingIdentity.problem(try certificate.serializeAsDER(), node: "pi1") == nil)
        let alternativeNames = try certificate.extensions.subjectAlternativeNames.map(Array.init)
        #expect(alternativeNames == [.dnsName("pi1"), .ipAddress(ASN1OctetString(contentBytes: [10, 0, 0, 5]))])

        // Someone else's names, identity or usages: left pending for a person to decide.
        let unapproved = [
            try request("other-ip", by: node, ips: [[10, 0, 0, 6]]),
            try request("foreign-dns", by: node, dns: ["api.example.com"]),
            try request("other-node", by: node, commonName: "system:node:pi2", dns: ["pi2"], ips: [[10, 0, 0, 6]]),
            try request("client-usage", by: node, usages: #"["digital signature","server auth","client auth"]"#),
            try request("by-admin", by: admin),
        ]
        for answer in unapproved {
            #expect(answer?[path: ["status", "certificate"]] == nil && answer?[path: ["status", "conditions"]] == nil, "\(String(describing: answer))")
        }

        // The same CA signs the API server's certificate: a node that lists the server's names
        // or loopback among its own addresses must not get them (it could pose as the server).
        #expect(try node.mergePatch("/api/v1/nodes/pi1/status", #"{"status":{"addresses":[{"type":"InternalIP","address":"10.0.0.5"},{"type":"Hostname","address":"pi1"},{"type":"Hostname","address":"iotkube-server"},{"type":"Hostname","address":"kubernetes.default"},{"type":"InternalIP","address":"127.0.0.1"}]}}"#).status == 200)
        for answer in [try request("server-name", by: node, dns: ["pi1", "iotkube-server"]), try request("api-name", by: node, dns: ["kubernetes.default"]),
                       try request("loopback", by: node, ips: [[127, 0, 0, 1]])] {
            #expect(answer?[path: ["status", "certificate"]] == nil && answer?[path: ["status", "conditions"]] == nil, "\(String(describing: answer))")
        }

        // A kubelet client request for system:masters, approved by mistake, is still not signed.
        let key = P256.Signing.PrivateKey()
        let subject = try DistinguishedName {
            OrganizationName("system:masters")
            CommonName("system:node:pi9")
        }
        let csr = try X509.CertificateSigningRequest(version: .v1, subject: subject, privateKey: .init(key), attributes: .init())
        let pem = Data(try csr.serializeAsPEM().pemString.utf8).base64EncodedString()
        let path = "/apis/certificates.k8s.io/v1/certificatesigningrequests"
        #expect(try admin.post(path, #"{"apiVersion":"certificates.k8s.io/v1","kind":"CertificateSigningRequest","metadata":{"name":"masters"},"spec":{"request":"\#(pem)","signerName":"kubernetes.io/kube-apiserver-client-kubelet","usages":["digital signature","client auth"]}}"#).status == 201)
        var pending = try #require(try admin.get(path + "/masters").json)
        pending.set(["status", "conditions"], .array([.object(["type": .string("Approved"), "status": .string("True"), "reason": .string("Mistake")])]))
        let approved = try admin.call("PUT", path + "/masters/approval", body: String(decoding: KubeJSON.serialize(pending), as: UTF8.self))
        #expect(approved.status == 200, "\(approved.body)")
        let signed = try #require(try admin.get(path + "/masters").json)
        #expect(signed[path: ["status", "certificate"]] == nil, "\(signed)")
        #expect(String(describing: signed[path: ["status", "conditions"]]).contains("must be for system:node:<node> in system:nodes only"), "\(signed)")
    }
}

extension Certificate {
    func serializeAsDER() throws -> [UInt8] {
        var serializer = DER.Serializer()
        try serializer.serialize(self)
        return serializer.serializedBytes
    }
}
