import Foundation
import Testing
@testable import Agent

/// The containers' and pods' lines of the agent's `/metrics/resource`, in the kubelet's
/// Prometheus format (what metrics-server scrapes on a real cluster).
struct ResourceMetricsTests {
    static func sample(_ namespace: String, _ pod: String, _ container: String, cpu: Int64, memory: Int64) -> PodMetricsSampler.ContainerSample {
        PodMetricsSampler.ContainerSample(namespace: namespace, pod: pod, container: container, cpuMicroseconds: cpu, memoryWorkingSetBytes: memory, sampledAt: 1)
    }

    @Test func containerAndPodLinesSumPerPod() {
        let text = AgentEndpoint.containerMetrics([
            Self.sample("default", "web", "nginx", cpu: 1_500_000, memory: 4096),
            Self.sample("default", "web", "sidecar", cpu: 250, memory: 1024),
            Self.sample("iot", "sensor", "reader", cpu: 12_000_001, memory: 8192),
        ], milliseconds: 1_700_000_000_000)
        let lines = text.split(separator: "\n").map(String.init)
        #expect(lines.contains(#"container_cpu_usage_seconds_total{container="nginx",namespace="default",pod="web"} 1.500000 1700000000000"#))
        #expect(lines.contains(#"container_cpu_usage_seconds_total{container="sidecar",namespace="default",pod="web"} 0.000250 1700000000000"#))
        #expect(lines.contains(#"container_memory_working_set_bytes{container="reader",namespace="iot",pod="sensor"} 8192 1700000000000"#))
        #expect(lines.contains(#"pod_cpu_usage_seconds_total{namespace="default",pod="web"} 1.500250 1700000000000"#))
        #expect(lines.contains(#"pod_memory_working_set_bytes{namespace="default",pod="web"} 5120 1700000000000"#))
        #expect(lines.contains("# TYPE container_cpu_usage_seconds_total counter"))
        #expect(lines.contains("# TYPE pod_memory_working_set_bytes gauge"))
    }

    @Test func aPodWithAPodCgroupReportsItsUsage() {
        var web = Self.sample("default", "web", "nginx", cpu: 1_000_000, memory: 4096)
        web.podUID = "uid-web"
        var other = Self.sample("default", "other", "app", cpu: 2_000_000, memory: 100)
        other.podUID = "uid-other"
        // The pod cgroup counts what the containers' own do not (an exec'd process, say).
        let text = AgentEndpoint.containerMetrics([web, other], milliseconds: 5) { uid in uid == "uid-web" ? (3_000_000, 9000) : nil }
        let lines = text.split(separator: "\n").map(String.init)
        #expect(lines.contains(#"pod_cpu_usage_seconds_total{namespace="default",pod="web"} 3.000000 5"#), "\(text)")
        #expect(lines.contains(#"pod_memory_working_set_bytes{namespace="default",pod="web"} 9000 5"#))
        #expect(lines.contains(#"pod_memory_working_set_bytes{namespace="default",pod="other"} 100 5"#))
    }

    @Test func labelValuesAreEscapedAndSumsSaturate() {
        let text = AgentEndpoint.containerMetrics([
            Self.sample("ns", "a\"b\\c\nd", "x", cpu: Int64.max, memory: Int64.max),
            Self.sample("ns", "a\"b\\c\nd", "y", cpu: Int64.max, memory: Int64.max),
        ], milliseconds: 0)
        #expect(text.contains(#"pod="a\"b\\c\nd""#), "\(text)")
        #expect(!text.contains("\nd\""))
        #expect(text.contains("pod_memory_working_set_bytes{namespace=\"ns\",pod=\"a\\\"b\\\\c\\nd\"} \(Int64.max) 0"), "\(text)")
    }
}
