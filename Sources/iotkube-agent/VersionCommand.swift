import ArgumentParser
import KubeModel
import SystemSupport

/// `iotkube-agent version`: the agent's version and build facts.
struct VersionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "version", abstract: "Print the agent version.")

    func run() {
        print("iotkube-agent \(IotkubeVersion.current) (Kubernetes API \(IotkubeVersion.kubernetesAPI))")
    }
}
