import ArgumentParser
import ControlPlane
import KubeModel

/// `iotkube-server token create`: a join token for `iotkube-agent join`.
struct TokenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token", abstract: "Manage join tokens.", subcommands: [CreateToken.self])

    struct CreateToken: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "create",
            abstract: "Create a join token; its last line of output is the token.",
            discussion: "The token holds the server address, the CA pin and a bootstrap token stored in kube-system.")

        @Option(help: "The data directory made by `init`.")
        var dataDir: String

        @Option(help: "How long the token stays valid: e.g. 30m, 24h, 7d; 0 for no expiry.")
        var ttl = "24h"

        @Option(help: "A note stored with the token.")
        var description = "iotkube join token"

        @Option(help: "The server URL the token names (default: https://<advertise address>:<port>); its host must be in the serving certificate: the advertise address, 127.0.0.1 or localhost. An agent on the server's own machine can use https://127.0.0.1:<port>, which a change of the machine's address does not break.")
        var server: String?

        func run() throws {
            let files = ClusterFiles(directory: dataDir)
            guard files.isInitialized else {
                throw ValidationError("\(dataDir) is not initialised: run `iotkube-server init --data-dir \(dataDir)` first")
            }
            guard let seconds = Self.seconds(ttl) else { throw ValidationError("--ttl must look like 30m, 24h or 7d, got \"\(ttl)\"") }
            let settings = try files.settings()
            // Checked before a token is stored: a refused URL leaves none behind.
            let chosenServer = try self.server.map { try Self.checked($0, settings: settings) }
            let store = try ObjectStore(path: files.storePath)
            let token = BootstrapToken.generate()
            try BootstrapTokens.create(token, ttlSeconds: seconds, description: description, in: store)
            let host = settings.advertiseAddress.contains(":") ? "[\(settings.advertiseAddress)]" : settings.advertiseAddress
            let advertised = "https://\(host):\(settings.port)"
            // cluster-info (kubeadm-style discovery) always names the advertised address.
            try files.publishClusterInfo(server: advertised, store: store)
            let server = chosenServer ?? advertised
            let pin = try files.caPublicKeyPin()
            let join = JoinToken(server: server, caPinHex: String(pin.dropFirst("sha256:".count)), bootstrapToken: token)
            print("Bootstrap token \(token.id) valid \(seconds == 0 ? "without expiry" : "for \(ttl)"). On the board run:")
            print("  iotkube-agent join <token>")
            print("kubeadm-style discovery: --server \(server) --token \(token) --discovery-token-ca-cert-hash \(pin)")
            print(join.description)
        }

        /// `url` as a join token's server: `https://` and exactly a host the serving certificate
        /// names (an IPv6 address in brackets), an optional port 1–65535, nothing else.
        static func checked(_ url: String, settings: (advertiseAddress: String, port: Int)) throws -> String {
            let names = [settings.advertiseAddress, "127.0.0.1", "localhost"]
            let refusal = ValidationError("--server \(url): must be https://HOST[:PORT] with HOST one the serving certificate names (\(names.joined(separator: ", ")))")
            guard url.hasPrefix("https://") else { throw refusal }
            var rest = Substring(url.dropFirst("https://".count))
            if rest.hasSuffix("/") { rest = rest.dropLast() }
            let host: Substring, afterHost: Substring
            if rest.hasPrefix("[") {
                guard let close = rest.firstIndex(of: "]") else { throw refusal }
                host = rest[rest.index(after: rest.startIndex)..<close]
                guard host.contains(":") else { throw refusal }
                afterHost = rest[rest.index(after: close)...]
            } else {
                let end = rest.firstIndex(of: ":") ?? rest.endIndex
                host = rest[..<end]
                afterHost = rest[end...]
            }
            guard names.contains(String(host)) else { throw refusal }
            if !afterHost.isEmpty {
                let port = afterHost.dropFirst()
                guard afterHost.first == ":", !port.isEmpty, port.count <= 5, port.allSatisfy(\.isASCII), port.allSatisfy(\.isNumber),
                      let number = Int(port), (1...65535).contains(number) else { throw refusal }
            }
            return "https://" + rest
        }

        static func seconds(_ text: String) -> Int64? {
            if text == "0" { return 0 }
            guard let unit = text.last, let value = Int64(text.dropLast()), value > 0 else { return nil }
            switch unit {
            case "s": return value
            case "m": return value * 60
            case "h": return value * 3600
            case "d": return value * 86400
            default: return nil
            }
        }
    }
}
