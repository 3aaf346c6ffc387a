#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif
import Agent
import ArgumentParser
import SystemSupport

struct ResetCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reset",
        abstract: "Undo join: stop the agent and its containers, release pod networking, and remove credentials, configuration and state.",
        discussion: "The package (binary, units, default configuration) stays; `iotkube-agent join` provisions the board again.")

    @Option(help: "Where agent.yaml and the kubeconfig are.")
    var configDir = "/etc/iotkube"

    @Option(help: "The agent's state directory (default: agent.yaml's stateDir, else /var/lib/iotkube).")
    var stateDir: String?

    @Option(help: "The runtime's state root.")
    var runtimeRoot = "/run/iotkube/runtime"

    @Option(help: "How many seconds an agent still running with the state directory is waited for (nothing is removed while it runs).")
    var waitForAgent = 30

    @Flag(name: [.short, .long], help: "Do not ask for confirmation.")
    var force = false

    func run() throws {
        let state = stateDir ?? (try? AgentConfiguration.load(configDir + "/agent.yaml"))?.stateDir ?? "/var/lib/iotkube"
        if !force {
            guard isatty(0) == 1 else {
                throw ValidationError("reset removes this board's credentials and every container and file under \(state); run with --force to confirm")
            }
            print("This stops the agent and its containers and removes \(configDir)/agent.yaml, \(configDir)/kubeconfig and \(state). Continue? [y/N] ", terminator: "")
            guard let answer = readLine(), answer.lowercased().hasPrefix("y") else {
                print("nothing changed")
                return
            }
        }
        let (lines, clean) = NodeReset(configDirectory: configDir, stateDirectory: state, runtimeRoot: runtimeRoot, lockWaitSeconds: min(max(waitForAgent, 0), 3600)).run()
        for line in lines { print(line) }
        print(clean ? "reset done: join again with `iotkube-agent join <token>`" : "reset finished with problems (see above)")
        if !clean { throw ExitCode(1) }
    }
}
