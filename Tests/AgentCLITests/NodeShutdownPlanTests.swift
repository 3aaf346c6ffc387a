import Agent
import Foundation
import IotkubeTestSupport
import KubeModel
import Testing

/// The graceful node shutdown's settings and priority groups, as the kubelet reads and forms them.
@Suite struct NodeShutdownPlanTests {
    func pod(_ name: String, priority: Int32?) -> Pod {
        var spec = PodSpec(containers: [])
        spec.priority = priority
        return Pod(metadata: ObjectMeta(name: name), spec: spec)
    }

    @Test func theTwoSettingsMakeTheKubeletsTwoGroups() throws {
        let plan = try AgentConfiguration.load(try AgentNetworkConfigurationTests.file("shutdownGracePeriod: 30s\nshutdownGracePeriodCriticalPods: 10s\n")).shutdownPlan()
        #expect(plan.groups == [.init(priority: 0, gracePeriodSeconds: 20), .init(priority: 2_000_000_000, gracePeriodSeconds: 10)])
        #expect(plan.totalSeconds == 30 && plan.isEnabled)
        let groups = plan.assign([pod("plain", priority: nil), pod("negative", priority: -5), pod("high", priority: 1_000_000),
                                  pod("cluster-critical", priority: 2_000_000_000), pod("node-critical", priority: 2_000_001_000)])
        #expect(groups.map { $0.map { $0.metadata.name ?? "" } } == [["plain", "negative", "high"], ["cluster-critical", "node-critical"]])
        // Off by default, as the kubelet's 0 s.
        #expect(try AgentConfiguration.load(try AgentNetworkConfigurationTests.file("")).shutdownPlan().isEnabled == false)
    }

    @Test func byPriorityGroupsTakeEachPodToTheHighestGroupAtOrBelowIt() throws {
        let plan = try AgentConfiguration.load(try AgentNetworkConfigurationTests.file("""
            shutdownGracePeriodByPodPriority:
            - {priority: 100000, shutdownGracePeriodSeconds: 20}
            - {priority: 0, shutdownGracePeriodSeconds: 5}
            - {priority: 2000000000, shutdownGracePeriodSeconds: 10}

            """)).shutdownPlan()
        #expect(plan.groups.map(\.priority) == [0, 100_000, 2_000_000_000])
        #expect(plan.totalSeconds == 35)
        #expect([Int32(-1), 0, 99_999, 100_000, 1_999_999_999, 2_000_001_000].map(plan.groupIndex(priority:)) == [0, 0, 0, 1, 1, 2])
    }

    @Test(arguments: [
        ("shutdownGracePeriod: 10s\nshutdownGracePeriodCriticalPods: 20s", "shutdownGracePeriodCriticalPods (20s) must not be more than shutdownGracePeriod (10s)"),
        ("shutdownGracePeriod: -5s", "shutdownGracePeriod: \"-5s\" is not a duration from 0 (off) to 1h"),
        ("shutdownGracePeriod: 9999999999999h", "shutdownGracePeriod: \"9999999999999h\" is not a duration"),
        ("shutdownGracePeriod: soon", "shutdownGracePeriod: \"soon\" is not a duration"),
        ("shutdownGracePeriod: 30s\nshutdownGracePeriodByPodPriority: [{priority: 0, shutdownGracePeriodSeconds: 5}]",
         "shutdownGracePeriodByPodPriority and shutdownGracePeriod cannot be given together"),
        ("shutdownGracePeriodByPodPriority: [{priority: 0, shutdownGracePeriodSeconds: 9223372036854775807}]",
         "shutdownGracePeriodByPodPriority[0].shutdownGracePeriodSeconds (9223372036854775807) must be 0 to 3600"),
        ("shutdownGracePeriodByPodPriority: [{priority: 7, shutdownGracePeriodSeconds: 5}, {priority: 7, shutdownGracePeriodSeconds: 6}]",
         "shutdownGracePeriodByPodPriority[1].priority (7) is given twice"),
    ])
    func badSettingsNameTheFileAndField(_ lines: String, _ message: String) throws {
        let path = try AgentNetworkConfigurationTests.file(lines + "\n")
        #expect { _ = try AgentConfiguration.load(path) } throws: { "\($0)".contains("\(path): \(message)") }
    }

    /// Thirty-two groups of an hour each add up without overflow; a 33rd is refused.
    @Test func manyGroupsAreBounded() throws {
        let entries = (0..<33).map { "- {priority: \($0), shutdownGracePeriodSeconds: 3600}" }
        let path = try AgentNetworkConfigurationTests.file("shutdownGracePeriodByPodPriority:\n" + entries.joined(separator: "\n") + "\n")
        #expect { _ = try AgentConfiguration.load(path) } throws: { "\($0)".contains("at most 32") }
        let fine = try AgentNetworkConfigurationTests.file("shutdownGracePeriodByPodPriority:\n" + entries.dropLast().joined(separator: "\n") + "\n")
        #expect(try AgentConfiguration.load(fine).shutdownPlan().totalSeconds == 32 * 3600)
    }
}
