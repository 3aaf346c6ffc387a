import Agent
import ArgumentParser

/// `iotkube-agent status`: a human-readable summary; exit code 0 when healthy.
struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "Show the node, its connection, certificate, heartbeat and pods; exit 0 when healthy.")

    @Option(help: "The agent configuration written by `join`.")
    var config = "/etc/iotkube/agent.yaml"

    func run() async throws {
        let report = await AgentStatusReport.gather(configPath: config)
        for line in report.lines { print(line) }
        if !report.healthy { throw ExitCode.failure }
    }
}
