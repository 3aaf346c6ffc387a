import FoundationEssentials
import KubeClient
import KubeModel
import SystemSupport

/// `iotkube-agent join`: makes this board a node of a cluster.
public struct Joiner: Sendable {
    public var server: String
    public var pinHex: String
    public var token: BootstrapToken
    public var nodeName: String
    public var labels: [String: String] = [:]
    public var configDirectory = "/etc/iotkube"
    public var stateDirectory = "/var/lib/iotkube"
    public var port: Int32 = 10250
    public var insecureRegistries: [String] = []
    public var systemReserved: [String: Quantity] = [:]
    public var force = false

    public init(server: String, pinHex: String, token: BootstrapToken, nodeName: String) {
        self.server = server
        self.pinHex = pinHex
        self.token = token
        self.nodeName = nodeName
    }

    public var configurationPath: String { "\(configDirectory)/agent.yaml" }
    public var kubeconfigPath: String { "\(configDirectory)/kubeconfig" }
    public var bootstrapKubeconfigPath: String { "\(configDirectory)/bootstrap-kubeconfig" }

    /// What join did.
    public enum Outcome: Sendable, Equatable {
        case joined(nodeName: String)
        case alreadyJoined(nodeName: String, server: String)
    }

    /// Joins: discovery with the pin, CSR with the bootstrap token, then the credentials and
    /// configuration are written atomically (kubeconfig first, agent.yaml last, so a crash in
    /// between leaves a board that is still "not joined").
    public func run() async throws -> Outcome {
        if !force, let existing = try? AgentConfiguration.load(configurationPath) {
            return .alreadyJoined(nodeName: existing.nodeName, server: existing.server)
        }
        if let problem = Self.nodeNameProblem(nodeName) { throw ProvisioningError("invalid node name \"\(nodeName)\": \(problem)") }
        let caPEM = try await ClusterDiscovery.discoverCA(server: server, pinHex: pinHex, token: token)
        let bootstrap = try KubeAPIClient(configuration: ClientConfiguration(server: server, certificateAuthorityPEM: caPEM, bearerToken: token.description))
        let password = try NodePassword.loadOrCreate(configDirectory: configDirectory)
        let credentials = try await NodeCredentials.request(nodeName: nodeName, client: bootstrap, password: password)

        try AtomicFile.makeDirectory(configDirectory, mode: 0o700)
        let kubeconfig = Self.kubeconfig(server: server, caPEM: caPEM, nodeName: nodeName, credentials: credentials)
        try AtomicFile.write(kubeconfig, to: kubeconfigPath, mode: 0o600)
        // Kept (0600), as the kubelet keeps its bootstrap kubeconfig: a board offline past its
        // certificate's expiry joins again with it while the token is still valid.
        try AtomicFile.write(ClientKubeconfig.render(server: server, caPEM: caPEM, user: "bootstrap-\(token.id)", token: token.description),
                             to: bootstrapKubeconfigPath, mode: 0o600)
        var configuration = AgentConfiguration()
        configuration.nodeName = nodeName
        configuration.server = server
        configuration.kubeconfig = kubeconfigPath
        configuration.bootstrapKubeconfig = bootstrapKubeconfigPath
        configuration.stateDir = stateDirectory
        configuration.port = port
        configuration.labels = labels.isEmpty ? nil : labels
        configuration.insecureRegistries = insecureRegistries.isEmpty ? nil : insecureRegistries
        configuration.systemReserved = systemReserved.isEmpty ? nil : systemReserved
        try AtomicFile.write(configuration.yaml, to: configurationPath, mode: 0o600)
        return .joined(nodeName: nodeName)
    }

    static func kubeconfig(server: String, caPEM: [UInt8], nodeName: String, credentials: NodeCredentials) -> String {
        ClientKubeconfig.render(
            server: server, caPEM: caPEM, user: "system:node:\(nodeName)",
            certificatePEM: Array(credentials.certificatePEM.utf8), keyPEM: Array(credentials.keyPEM.utf8))
    }

    /// Node names are DNS subdomains (lower case, digits, '-' and '.').
    public static func nodeNameProblem(_ name: String) -> String? {
        let labels = name.split(separator: ".", omittingEmptySubsequences: false)
        let valid = !name.isEmpty && name.count <= 253 && labels.allSatisfy { label in
            !label.isEmpty && label.count <= 63 && label.first != "-" && label.last != "-"
                && label.utf8.allSatisfy { ($0 >= 97 && $0 <= 122) || ($0 >= 48 && $0 <= 57) || $0 == 45 }
        }
        return valid ? nil : "use lower-case letters, digits, '-' and '.' (a DNS subdomain), e.g. pi-kitchen"
    }
}
