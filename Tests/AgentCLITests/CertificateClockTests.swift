import Agent
import Foundation
import IotkubeTestSupport
import KubeClient
import KubeModel
import Synchronization
import Testing

/// The client certificate's age on the boot clock: a board without a real-time clock whose wall
/// clock jumps a year (NTP after boot, or a bad time source) neither takes its certificate for
/// expired (the heartbeat then stopped for a re-bootstrap that could not work, and the node
/// went NotReady) nor renews it at every beat.
@Suite(.enabled(if: toolAvailable("openssl"), "needs openssl"))
struct CertificateClockTests {
    static let year: Int64 = 366 * 86_400

    /// A 30-day certificate issued now, in a kubeconfig; the rotation reads it with `clock`.
    func rotation(clock: PodClock) throws -> CertificateRotation {
        let directory = NSTemporaryDirectory() + "iotkube-cert-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let made = try ServerProcess.run("/usr/bin/env", ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                                                          "-days", "30", "-subj", "/O=system:nodes/CN=system:node:pi", "-keyout", directory + "/key.pem",
                                                          "-out", directory + "/cert.pem"])
        guard made.status == 0 else { throw TestFailure("openssl: \(made.output)") }
        let certificate = try String(contentsOfFile: directory + "/cert.pem", encoding: .utf8)
        let key = try String(contentsOfFile: directory + "/key.pem", encoding: .utf8)
        func base64(_ text: String) -> String { Data(text.utf8).base64EncodedString() }
        let kubeconfig = """
            apiVersion: v1
            kind: Config
            clusters: [{name: c, cluster: {server: "https://127.0.0.1:1", certificate-authority-data: \(base64(certificate))}}]
            users: [{name: u, user: {client-certificate-data: \(base64(certificate)), client-key-data: \(base64(key))}}]
            contexts: [{name: x, context: {cluster: c, user: u}}]
            current-context: x
            """
        var configuration = AgentConfiguration()
        configuration.nodeName = "pi"
        configuration.server = "https://127.0.0.1:1"
        configuration.kubeconfig = directory + "/kubeconfig"
        return try CertificateRotation(configuration: configuration, clientConfiguration: try Kubeconfig.parse(Array(kubeconfig.utf8)), clock: clock)
    }

    @Test func aWallClockJumpNeitherExpiresNorRenewsTheCertificate() throws {
        let wallOffset = Atomic<Int64>(0), bootOffset = Atomic<Int64>(0)
        let clock = PodClock(sinceBoot: { PodClock.bootSeconds() + bootOffset.load(ordering: .relaxed) }, wall: {
            var now = Timestamp.now()
            now.seconds += wallOffset.load(ordering: .relaxed)
            return now
        })
        let certificate = try rotation(clock: clock)
        #expect(!certificate.isExpired && !certificate.isRenewalDue)
        for jump in [Self.year, -Self.year, 10 * Self.year] {
            wallOffset.store(jump, ordering: .relaxed)
            #expect(!certificate.isExpired, "a wall-clock jump of \(jump) s expired the certificate")
            #expect(!certificate.isRenewalDue, "a wall-clock jump of \(jump) s made the certificate due")
        }
        // Time that really passes (the boot clock) does both: due after 70–90 % of the 30 days, over after all of them.
        bootOffset.store(27 * 86_400 + 3600, ordering: .relaxed)
        #expect(certificate.isRenewalDue && !certificate.isExpired)
        bootOffset.store(31 * 86_400, ordering: .relaxed)
        #expect(certificate.isExpired)
    }

    /// Loaded after a reboot, a certificate's age comes from the wall clock once: an old one is
    /// due (or over) at once.
    @Test func anOldCertificateIsAgedFromTheWallClockWhenLoaded() throws {
        let clock = PodClock(sinceBoot: { PodClock.bootSeconds() }, wall: {
            var now = Timestamp.now()
            now.seconds += 40 * 86_400
            return now
        })
        #expect(try rotation(clock: clock).isExpired)
    }
}
