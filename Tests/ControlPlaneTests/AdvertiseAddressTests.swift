@testable import ControlPlane
import Foundation
import IotkubeTestSupport
import KubeModel
import SystemSupport
import Testing

/// What `init` advertises by default and what a join token may name: a token printed for
/// another board must not name 127.0.0.1 (useless there), and the local agent may keep the
/// loopback address (a change of the machine's address does not cut it off).
@Suite(.enabled(if: toolAvailable("openssl"), "needs openssl"))
struct AdvertiseAddressTests {
    func server(_ arguments: [String]) throws -> (status: Int32, output: String) {
        try ServerProcess.run(ServerProcess.serverBinary.path, arguments)
    }

    @Test func initAdvertisesThePrimaryAddressAndTokensNameOnlyWhatTheCertificateHolds() throws {
        let directory = NSTemporaryDirectory() + "iotkube-advertise-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let port = try ServerProcess.freePort()
        let initialised = try server(["init", "--data-dir", directory, "--port", String(port)])
        #expect(initialised.status == 0, "\(initialised.output)")
        let primary = PrimaryAddress.ipv4() ?? "127.0.0.1"
        #expect(initialised.output.contains("Boards reach the server at https://\(primary):\(port)"), "\(initialised.output)")
        if primary == "127.0.0.1" { print("[advertise] this machine has no default route: 127.0.0.1 is advertised") }

        // The serving certificate names the advertised address and the loopback one.
        let names = try ServerProcess.run("/usr/bin/env", ["openssl", "x509", "-in", directory + "/pki/server.crt", "-noout", "-ext", "subjectAltName"])
        #expect(names.output.contains("IP Address:\(primary)") && names.output.contains("IP Address:127.0.0.1"), "\(names.output)")

        func tokenServer(_ extra: [String]) throws -> String? {
            let created = try server(["token", "create", "--data-dir", directory] + extra)
            guard created.status == 0 else { return nil }
            return try JoinToken(parsing: String(created.output.split(separator: "\n").last ?? "")).server
        }
        #expect(try tokenServer([]) == "https://\(primary):\(port)")
        #expect(try tokenServer(["--server", "https://127.0.0.1:\(port)"]) == "https://127.0.0.1:\(port)")
        #expect(try tokenServer(["--server", "https://localhost:\(port)/"]) == "https://localhost:\(port)")
        // A host the certificate does not name would fail the agent's TLS check: refused here.
        let elsewhere = try server(["token", "create", "--data-dir", directory, "--server", "https://evil.example:\(port)"])
        #expect(elsewhere.status != 0 && elsewhere.output.contains("HOST one the serving certificate names"), "\(elsewhere.output)")
        for bad in ["http://127.0.0.1:\(port)", "https://127.0.0.1:\(port)@evil.example", "https://127.0.0.1@evil.example:\(port)",
                    "https://127.0.0.1:abc", "https://127.0.0.1:\(port)?x", "https://[127.0.0.1]:\(port)", "https://127.0.0.1:99999",
                    "https://127.0.0.1:\(port)/path"] {
            let refused = try server(["token", "create", "--data-dir", directory, "--server", bad])
            #expect(refused.status != 0 && refused.output.contains("must be https://HOST[:PORT]"), "\(bad): \(refused.output)")
        }
        // A refused URL stores no token: only the three printed above exist.
        let store = try ObjectStore(path: ClusterFiles(directory: directory).storePath)
        #expect(try BootstrapTokens.signingTokens(in: store).count == 3)
    }
}
