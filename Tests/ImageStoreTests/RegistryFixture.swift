import Foundation
import IotkubeTestSupport

/// The real parts the image tests pull from, started once per test run: Debian's
/// `docker-registry` three times over one storage directory (open, htpasswd basic auth, token
/// auth with a token service), the test images built with `make_layout.py` and pushed with
/// `skopeo`, and a fault-injecting proxy in front of the open registry.
final class RegistryFixture: @unchecked Sendable {
    let directory: String
    let layout: String
    /// `127.0.0.1:port` of each registry.
    private(set) var open = ""
    private(set) var basicAuth = ""
    private(set) var tokenAuth = ""
    private(set) var faulty = ""
    /// A registry serving HTTPS with a certificate from a private CA (`caFile`).
    private(set) var tls = ""
    var caFile: String { directory + "/registry-ca.pem" }
    let user = "edge"
    let password = "s3cret-pass"
    private var processes: [BackgroundProcess] = []

    static let requiredTools = ["docker-registry", "skopeo", "umoci", "htpasswd", "openssl", "zstd", "busybox", "python3", "curl"]

    /// Whether the tools are here (always true under CI, where a missing one fails the tests).
    static var toolsPresent: Bool { requiredTools.allSatisfy(toolAvailable) }

    static let shared: Result<RegistryFixture, any Error> = Result { try RegistryFixture() }

    static func get() throws -> RegistryFixture { try shared.get() }

    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures").path
    static let agent = ServerProcess.buildDirectory.appendingPathComponent("iotkube-agent").path

    /// Every tag make_layout.py writes; multi-platform ones are pushed with --all.
    static let tags = ["busybox", "layered", "many", "plain", "zstd", "multi", "armonly", "arm64", "traversal", "absolute",
                       "symlink-escape", "symlink-absolute", "hardlink-escape", "hardlink-via-symlink", "devices",
                       "wrong-diffid", "bomb", "chmod-via-symlink", "chmod-via-parent", "lower-symlink"]

    private init() throws {
        directory = NSTemporaryDirectory() + "iotkube-registry-\(UUID().uuidString)"
        layout = directory + "/layout"
        try FileManager.default.createDirectory(atPath: directory + "/storage", withIntermediateDirectories: true)
        func run(_ executable: String, _ arguments: [String], timeout: TimeInterval = 300) throws -> String {
            let result = try ServerProcess.run(executable, arguments, timeout: timeout)
            guard result.status == 0 else { throw TestFailure("\(executable) \(arguments.joined(separator: " ")): \(result.output)") }
            return result.output
        }
        let python = ServerProcess.findExecutable("python3") ?? "/usr/bin/python3"

        // Credentials for the basic-auth registry and the token service's signing key.
        _ = try run("/usr/bin/htpasswd", ["-Bbc", directory + "/htpasswd", user, password])
        _ = try run("/usr/bin/openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                                         "-keyout", directory + "/token-key.pem", "-out", directory + "/token-cert.pem",
                                         "-days", "2", "-subj", "/CN=iotkube-test-token-signer"])
        let token = try BackgroundProcess(python, [Self.fixtures + "/token_server.py", directory + "/token-key.pem", directory + "/token-cert.pem",
                                                   "iotkube-test-issuer", "iotkube-test", user, password],
                                          logPath: directory + "/token.log", captureFirstLine: true)
        let tokenPort = token.firstLine()
        guard Int(tokenPort) != nil else { throw TestFailure("token service did not start: \(token.log)") }
        processes.append(token)

        // A private CA and a serving certificate for 127.0.0.1, for the HTTPS registry.
        _ = try run("/usr/bin/openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                                         "-keyout", directory + "/registry-ca-key.pem", "-out", directory + "/registry-ca.pem",
                                         "-days", "2", "-subj", "/CN=iotkube-test-registry-ca"])
        _ = try run("/usr/bin/openssl", ["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                                         "-keyout", directory + "/registry-key.pem", "-out", directory + "/registry.csr",
                                         "-subj", "/CN=127.0.0.1"])
        try "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n".write(toFile: directory + "/registry-ext.cnf", atomically: true, encoding: .utf8)
        _ = try run("/usr/bin/openssl", ["x509", "-req", "-in", directory + "/registry.csr", "-CA", directory + "/registry-ca.pem",
                                         "-CAkey", directory + "/registry-ca-key.pem", "-CAcreateserial", "-days", "2",
                                         "-extfile", directory + "/registry-ext.cnf", "-out", directory + "/registry.pem"])

        func startRegistry(_ name: String, auth: String, tls: Bool = false) throws -> String {
            let port = try ServerProcess.freePort()
            let config = """
                version: 0.1
                log:
                  level: warn
                storage:
                  filesystem:
                    rootdirectory: \(directory)/storage
                  delete:
                    enabled: true
                http:
                  addr: 127.0.0.1:\(port)
                \(tls ? "  tls:\n    certificate: \(directory)/registry.pem\n    key: \(directory)/registry-key.pem" : "")
                \(auth)
                """
            try config.write(toFile: "\(directory)/\(name).yml", atomically: true, encoding: .utf8)
            processes.append(try BackgroundProcess("/usr/bin/docker-registry", ["serve", "\(directory)/\(name).yml"], logPath: "\(directory)/\(name).log"))
            try waitForHTTP("\(tls ? "https" : "http")://127.0.0.1:\(port)/v2/")
            return "127.0.0.1:\(port)"
        }
        open = try startRegistry("open", auth: "")
        basicAuth = try startRegistry("basic", auth: """
            auth:
              htpasswd:
                realm: iotkube-test
                path: \(directory)/htpasswd
            """)
        tokenAuth = try startRegistry("token", auth: """
            auth:
              token:
                realm: http://127.0.0.1:\(tokenPort)/token
                service: iotkube-test
                issuer: iotkube-test-issuer
                rootcertbundle: \(directory)/token-cert.pem
            """)

        tls = try startRegistry("tls", auth: "", tls: true)

        let proxy = try BackgroundProcess(python, [Self.fixtures + "/fault_proxy.py", open], logPath: directory + "/proxy.log", captureFirstLine: true)
        let proxyPort = proxy.firstLine()
        guard Int(proxyPort) != nil else { throw TestFailure("fault proxy did not start: \(proxy.log)") }
        processes.append(proxy)
        faulty = "127.0.0.1:\(proxyPort)"

        _ = try run(python, [Self.fixtures + "/make_layout.py", layout])
        for tag in Self.tags {
            let all = tag == "multi" || tag == "armonly" ? ["--all"] : []
            _ = try run("/usr/bin/skopeo", ["copy", "-q"] + all + ["--dest-tls-verify=false", "oci:\(layout):\(tag)", "docker://\(open)/test/\(tag):1"])
        }
        // The same layered image with Docker schema 2 media types (what Docker Hub mostly serves).
        _ = try run("/usr/bin/skopeo", ["copy", "-q", "--format", "v2s2", "--dest-tls-verify=false", "oci:\(layout):layered", "docker://\(open)/test/layered-docker:1"])
    }

    /// A fresh, empty state directory for one test.
    func newStateDirectory() -> String {
        let path = directory + "/state-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// Runs `iotkube-agent images <arguments>`; returns the exit status and combined output.
    func agent(_ arguments: [String], timeout: TimeInterval = 120) throws -> (status: Int32, output: String) {
        try ServerProcess.run(Self.agent, ["images"] + arguments, timeout: timeout)
    }

    /// `images pull` of `test/<tag>:1` from `registry` (default: the open one) into `root`.
    func pull(_ tag: String, root: String, registry: String? = nil, extra: [String] = []) throws -> (status: Int32, output: String) {
        let host = registry ?? open
        return try agent(["pull", "--root", root, "--config", directory + "/no-agent.yaml", "--insecure-registry", host] + extra + ["\(host)/test/\(tag):1"])
    }

    /// The `find` listing and file hashes of a tree: what must agree between two unpackers.
    static func treeListing(_ directory: String) throws -> String {
        let script = """
            cd "$1" && (find . -mindepth 1 -type d -printf '%P|d|%m|%U|%G\\n'; \
              find . -mindepth 1 ! -type d -printf '%P|%y|%m|%U|%G|%s|%l|%n\\n') | LC_ALL=C sort && \
            find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum
            """
        let result = try ServerProcess.run("/bin/sh", ["-c", script, "sh", directory])
        guard result.status == 0 else { throw TestFailure("listing \(directory): \(result.output)") }
        return result.output
    }

    /// The listing of layer directories (bottom first) mounted as one overlayfs, in a private
    /// mount namespace so nothing stays mounted.
    static func overlayListing(_ layers: [String]) throws -> String {
        let mountPoint = NSTemporaryDirectory() + "iotkube-overlay-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: mountPoint) }
        // Relative lowerdirs keep the option string short (one page at most), as a runtime must.
        let parent = (layers[0] as NSString).deletingLastPathComponent
        let lower = layers.reversed().map { ($0 as NSString).lastPathComponent }.joined(separator: ":")
        let script = """
            cd "$1" && mount -t overlay overlay -o "lowerdir=$2" "$3" && cd "$3" && \
            (find . -mindepth 1 -type d -printf '%P|d|%m|%U|%G\\n'; \
             find . -mindepth 1 ! -type d -printf '%P|%y|%m|%U|%G|%s|%l|%n\\n') | LC_ALL=C sort && \
            find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum
            """
        let result = try ServerProcess.run("/usr/bin/unshare", ["-m", "--propagation", "private", "/bin/sh", "-c", script, "sh", parent, lower, mountPoint])
        guard result.status == 0 else { throw TestFailure("overlay listing: \(result.output)") }
        return result.output
    }

    /// The store's records (`images ls --json`).
    func records(root: String) throws -> [[String: Any]] {
        let result = try agent(["ls", "--json", "--root", root, "--config", directory + "/no-agent.yaml"])
        guard result.status == 0, let data = result.output.data(using: .utf8),
              let records = try JSONSerialization.jsonObject(with: data) as? [[String: Any]] else {
            throw TestFailure("images ls --json: \(result.output)")
        }
        return records
    }
}
