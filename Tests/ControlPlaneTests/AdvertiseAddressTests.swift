import Foundation
import IotkubeTestSupport
import Testing

/// A cluster made without `--advertise-address` is reached by other boards at this machine's
/// primary address (its default route's source, as `ip route get` reports it), not 127.0.0.1:
/// `init` says so, join tokens name it, and the server answers there with a certificate valid for it.
@Suite(.ownThread)
struct AdvertiseAddressTests {
    /// The default route's source address, read by iproute2; nil without a default route.
    static func primaryAddress() throws -> String? {
        let route = try ServerProcess.run("/usr/sbin/ip", ["-4", "route", "get", "1.1.1.1"])
        guard route.status == 0, let range = route.output.range(of: #"\bsrc (\d+\.\d+\.\d+\.\d+)"#, options: .regularExpression) else { return nil }
        let address = String(route.output[range].dropFirst(4))
        return address.hasPrefix("127.") ? nil : address
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/sbin/ip") && toolAvailable("curl"), "needs iproute2 and curl"))
    func initAdvertisesThePrimaryAddressAndTokensNameIt() throws {
        let expected = try Self.primaryAddress() ?? "127.0.0.1"
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("iotkube-advertise-\(UUID().uuidString.prefix(8))").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let port = try ServerProcess.freePort()
        let initialized = try ServerProcess.run(ServerProcess.serverBinary.path, ["init", "--data-dir", directory, "--port", String(port)])
        #expect(initialized.status == 0, "\(initialized.output)")
        #expect(initialized.output.contains("Boards join it at https://\(expected):\(port)"), "\(initialized.output)")
        #expect(expected == "127.0.0.1" || initialized.output.contains("--advertise-address"), "how to change it: \(initialized.output)")

        // The join token's second field is the server URL, base64url.
        let created = try ServerProcess.run(ServerProcess.serverBinary.path, ["token", "create", "--data-dir", directory])
        #expect(created.status == 0, "\(created.output)")
        let fields = (created.output.split(separator: "\n").last ?? "").split(separator: ".")
        var encoded = fields.count > 1 ? String(fields[1]).replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/") : ""
        while encoded.count % 4 != 0 { encoded += "=" }
        let server = Data(base64Encoded: encoded).flatMap { String(data: $0, encoding: .utf8) }
        #expect(server == "https://\(expected):\(port)", "\(created.output)")

        // Served on every address by default, with a certificate valid for the advertised one.
        let running = try SpawnedProcess(ServerProcess.serverBinary.path, ["run", "--data-dir", directory], output: .file(directory + "/server.log"))
        defer { running.terminate(); running.waitUntilExit() }
        var answer: (status: Int32, output: String) = (1, "")
        for _ in 0..<100 {
            answer = try ServerProcess.run(ServerProcess.findExecutable("curl") ?? "/usr/bin/curl", ["-sS", "--max-time", "5", "--cacert", directory + "/pki/ca.crt", "https://\(expected):\(port)/version"])
            if answer.status == 0 { break }
            Thread.sleep(forTimeInterval: 0.1)
        }
        #expect(answer.status == 0 && answer.output.contains("gitVersion"), "\(answer.output)")
    }
}
