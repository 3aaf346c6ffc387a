import Crypto
import Foundation
import IotkubeTestSupport
import KubeModel

@testable import ControlPlane

/// Someone calling a real iotkube-server over HTTPS with curl: a node or the admin with a client
/// certificate from the cluster CA, or nobody (no credentials).
struct ClusterCaller {
    let server: ServerProcess
    /// curl's credential arguments (none: anonymous).
    let credentials: [String]

    /// The answer: HTTP status and body.
    struct Answer {
        var status: Int
        var body: String
        var json: JSONValue? { try? KubeJSON.parse(Array(body.utf8)) }
        var message: String { json?.string(at: ["message"]) ?? body }
    }

    static func anonymous(_ server: ServerProcess) -> ClusterCaller { ClusterCaller(server: server, credentials: []) }

    /// A caller with a client certificate for `user` in `groups`, issued by the server's CA.
    static func certified(_ server: ServerProcess, user: String, groups: [String]) throws -> ClusterCaller {
        let pki = server.directory.appendingPathComponent("pki")
        let authority = try CertificateAuthority(
            certificatePEM: try String(contentsOf: pki.appendingPathComponent("ca.crt"), encoding: .utf8),
            keyPEM: try String(contentsOf: pki.appendingPathComponent("ca.key"), encoding: .utf8))
        let key = P256.Signing.PrivateKey()
        let certificate = try authority.issue(commonName: user, organizations: groups, publicKey: .init(key.publicKey),
                                              serverAuth: false, clientAuth: true, validity: 3600)
        let stem = user.replacingOccurrences(of: ":", with: "-")
        let certificateFile = server.directory.appendingPathComponent("\(stem).crt")
        let keyFile = server.directory.appendingPathComponent("\(stem).key")
        try certificate.serializeAsPEM().pemString.write(to: certificateFile, atomically: true, encoding: .utf8)
        try key.pemRepresentation.write(to: keyFile, atomically: true, encoding: .utf8)
        return ClusterCaller(server: server, credentials: ["--cert", certificateFile.path, "--key", keyFile.path])
    }

    /// The node `name`'s own credential (`system:node:<name>` in `system:nodes`).
    static func node(_ server: ServerProcess, _ name: String) throws -> ClusterCaller {
        try certified(server, user: "system:node:\(name)", groups: ["system:nodes"])
    }

    static func admin(_ server: ServerProcess) throws -> ClusterCaller {
        try certified(server, user: "test-admin", groups: ["system:masters"])
    }

    /// Sends one request; `body` is JSON unless `contentType` says otherwise.
    func call(_ method: String, _ path: String, body: String? = nil, contentType: String = "application/json",
              headers: [String] = []) throws -> Answer {
        guard let curl = ServerProcess.findExecutable("curl") else { throw TestFailure("curl is not installed") }
        let ca = server.directory.appendingPathComponent("pki/ca.crt").path
        var arguments = ["-sS", "--cacert", ca, "-X", method, "-w", "\n%{http_code}"] + credentials
        for header in headers { arguments += ["-H", header] }
        if let body { arguments += ["-H", "Content-Type: \(contentType)", "--data-binary", "@-"] }
        let (status, output) = try ServerProcess.run(curl, arguments + ["https://127.0.0.1:\(server.port)\(path)"], input: body)
        guard status == 0, let newline = output.lastIndex(of: "\n"), let code = Int(output[output.index(after: newline)...]) else {
            throw TestFailure("curl \(method) \(path) failed: \(output)")
        }
        return Answer(status: code, body: String(output[..<newline]))
    }

    func get(_ path: String) throws -> Answer { try call("GET", path) }
    func post(_ path: String, _ body: String) throws -> Answer { try call("POST", path, body: body) }
    func mergePatch(_ path: String, _ body: String) throws -> Answer {
        try call("PATCH", path, body: body, contentType: "application/merge-patch+json")
    }
}
