import ArgumentParser
import KubeModel
import SystemSupport

/// The iotkube embedded control plane: a Kubernetes API subset for kubectl and agents.
@main
struct IotkubeServer: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "iotkube-server",
        abstract: "The iotkube embedded control plane (a Kubernetes API subset).",
        version: IotkubeVersion.current,
        subcommands: [InitCommand.self, RunCommand.self, TokenCommand.self, VersionCommand.self]
    )
}

/// `iotkube-server version`.
struct VersionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "version", abstract: "Print the server version.")

    func run() {
        print("iotkube-server \(IotkubeVersion.current) (Kubernetes API \(IotkubeVersion.kubernetesAPI))")
    }
}
