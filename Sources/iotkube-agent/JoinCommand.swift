import Agent
import ArgumentParser
import KubeModel
import SystemSupport

/// `iotkube-agent join`: provisions this board as a node of a cluster.
struct JoinCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "join",
        abstract: "Join this board to a cluster.",
        discussion: """
            With an iotkube join token (from `iotkube-server token create`), or kubeadm-style with \
            --server, --token and --discovery-token-ca-cert-hash. The server's CA is checked against \
            the pin before any secret is sent; the node key is made here and never leaves the board. \
            A token given on the command line is visible to every local user (ps, /proc/*/cmdline) while \
            join runs: give it with --token-file (a file, or - for standard input) instead.
            """)

    @Argument(help: "An iotkube join token (iotkube1.…); visible to other local users while join runs, see --token-file.")
    var joinToken: String?

    @Option(help: "Read the join token (or, with --server, the bootstrap token) from this file; - reads standard input.")
    var tokenFile: String?

    @Option(help: "The API server URL (kubeadm-style join).")
    var server: String?

    @Option(help: "A bootstrap token abcdef.0123456789abcdef (kubeadm-style join); visible to other local users, see --token-file.")
    var token: String?

    @Option(help: "sha256:<hex> of the cluster CA's public key (kubeadm-style join).")
    var discoveryTokenCaCertHash: String?

    @Option(help: "The node name (default: this host's name).")
    var nodeName: String?

    @Flag(help: "Name the node after the board's serial number (board-<serial>).")
    var nodeNameFromSerial = false

    @Option(help: "Resources kept for the system, cpu=100m,memory=128Mi (allocatable = capacity - these).")
    var systemReserved: String?

    @Option(help: "Extra node labels, k=v,k2=v2.")
    var labels: String?

    @Option(help: "Where agent.yaml and the kubeconfig are written.")
    var configDir = "/etc/iotkube"

    @Option(help: "The agent's state directory.")
    var stateDir = "/var/lib/iotkube"

    @Option(help: "The agent's HTTPS port.")
    var port: Int32 = 10250

    @Option(name: .customLong("insecure-registry"), help: "A registry (host:port) reached without TLS verification; repeatable.")
    var insecureRegistries: [String] = []

    @Flag(help: "Do not enable and start the systemd unit.")
    var noStart = false

    @Flag(help: "Join again even if this board has joined before.")
    var force = false

    func run() async throws {
        let (serverURL, pin, bootstrapToken) = try credentials()
        var joiner = Joiner(server: serverURL, pinHex: pin, token: bootstrapToken, nodeName: try resolvedNodeName())
        joiner.labels = try parsedLabels()
        joiner.configDirectory = configDir
        joiner.stateDirectory = stateDir
        joiner.port = port
        joiner.insecureRegistries = insecureRegistries
        joiner.systemReserved = try parsedReserved()
        joiner.force = force
        do {
            switch try await joiner.run() {
            case .alreadyJoined(let name, let existingServer):
                print("This board has already joined \(existingServer) as node \(name); nothing changed (use --force to join again).")
            case .joined(let name):
                print("Joined \(serverURL) as node \(name).")
                print("Credentials: \(joiner.kubeconfigPath) (0600); configuration: \(joiner.configurationPath).")
                if !noStart { startService() }
            }
        } catch {
            printToStandardError("iotkube-agent join: \(error)")
            throw ExitCode.failure
        }
    }

    private func credentials() throws -> (String, String, BootstrapToken) {
        var joinToken = joinToken, token = token
        if let tokenFile {
            guard joinToken == nil, token == nil else { throw ValidationError("give the token either on the command line or with --token-file, not both") }
            let text = try TokenFile.token(from: tokenFile)
            if server == nil { joinToken = text } else { token = text }
        }
        if let joinToken {
            do {
                let parsed = try JoinToken(parsing: joinToken)
                return (parsed.server, parsed.caPinHex, parsed.bootstrapToken)
            } catch {
                throw ValidationError("\(error)")
            }
        }
        guard let server, let token, let hash = discoveryTokenCaCertHash else {
            throw ValidationError("give a join token, or all of --server, --token and --discovery-token-ca-cert-hash")
        }
        guard let bootstrap = BootstrapToken(token) else { throw ValidationError("--token must look like abcdef.0123456789abcdef") }
        guard hash.hasPrefix("sha256:"), hash.count == 71 else { throw ValidationError("--discovery-token-ca-cert-hash must be sha256:<64 hex digits>") }
        return (server, String(hash.dropFirst("sha256:".count)), bootstrap)
    }

    private func resolvedNodeName() throws -> String {
        if let nodeName { return nodeName }
        if nodeNameFromSerial {
            guard let serial = HostReader().boardSerial() else { throw ValidationError("this board reports no serial number") }
            return "board-" + serial.lowercased().filter { $0.isLetter || $0.isNumber }
        }
        return HostFacts.hostname().lowercased()
    }

    private func parsedLabels() throws -> [String: String] {
        var result: [String: String] = [:]
        for pair in (labels ?? "").split(separator: ",") where !pair.isEmpty {
            let parts = pair.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, !parts[0].isEmpty else { throw ValidationError("--labels must be k=v,k2=v2, got \"\(pair)\"") }
            result[parts[0]] = parts[1]
        }
        let forbidden = KubeletLabels.forbidden(result.keys)
        guard forbidden.isEmpty else {
            throw ValidationError("--labels: a node may not set \(forbidden.joined(separator: ", ")) on itself (the API server's NodeRestriction refuses them); label the Node with kubectl instead")
        }
        return result
    }

    private func parsedReserved() throws -> [String: Quantity] {
        var result: [String: Quantity] = [:]
        for pair in (systemReserved ?? "").split(separator: ",") where !pair.isEmpty {
            let parts = pair.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, let quantity = try? Quantity(parsing: parts[1]), quantity.sign >= 0 else {
                throw ValidationError("--system-reserved must be like cpu=100m,memory=128Mi, got \"\(pair)\"")
            }
            result[parts[0]] = quantity
        }
        return result
    }

    private func startService() {
        switch SystemdUnit.enableAndStart("iotkube-agent.service") {
        case .started: print("Enabled and started iotkube-agent.service.")
        case .noSystemd: print("systemd is not running here: start the agent with `iotkube-agent run --config \(configDir)/agent.yaml`.")
        case .failed(let status): print("warning: `systemctl enable --now iotkube-agent.service` failed (exit \(status)); start the agent yourself.")
        }
    }
}
