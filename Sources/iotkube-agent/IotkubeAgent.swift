import ArgumentParser
import KubeModel
import SystemSupport

/// The iotkube edge node agent (the kubelet role).
@main
struct IotkubeAgent: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "iotkube-agent",
        abstract: "The iotkube edge node agent: runs the pods a Kubernetes API server assigns to this board.",
        version: IotkubeVersion.current,
        subcommands: [JoinCommand.self, RunCommand.self, StatusCommand.self, ResetCommand.self, ImagesCommand.self, RuntimeCommand.self, VersionCommand.self, ManifestCheckCommand.self, BenchCommand.self]
    )
}
