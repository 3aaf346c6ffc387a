import Agent
import KubeModel
import Testing

/// Container states, phase and conditions as the kubelet reports them.
@Suite struct PodStatusBuilderTests {
    static let t0 = Timestamp(seconds: 1_800_000_000)
    static let t1 = Timestamp(seconds: 1_800_000_060)

    static func pod(_ policy: RestartPolicy, containers: [String] = ["app"]) -> Pod {
        var spec = PodSpec(containers: containers.map { Container(name: $0, image: "busybox") })
        spec.restartPolicy = policy
        return Pod(metadata: ObjectMeta(name: "p", namespace: "edge"), spec: spec)
    }

    static func exited(_ code: Int32, oom: Bool = false, execError: String? = nil) -> PodStatusBuilder.Observation.State {
        .terminated(exitCode: code, signal: oom ? 9 : 0, oomKilled: oom, execError: execError, startedAt: t0, finishedAt: t1, message: nil)
    }

    @Test func terminationReasons() {
        func reason(_ state: PodStatusBuilder.Observation.State) -> String? { PodStatusBuilder.containerState(state, containerID: "iotkube://c1").terminated?.reason }
        #expect(reason(Self.exited(0)) == "Completed")
        #expect(reason(Self.exited(1)) == "Error")
        #expect(reason(Self.exited(137, oom: true)) == "OOMKilled")
        #expect(reason(Self.exited(127, execError: "exec: \"nope\": not found")) == "ContainerCannotRun")
        let terminated = PodStatusBuilder.containerState(Self.exited(137, oom: true), containerID: "iotkube://c1").terminated
        #expect(terminated?.signal == 9 && terminated?.containerID == "iotkube://c1" && terminated?.finishedAt == Self.t1)
    }

    @Test(arguments: [
        (RestartPolicy.never, [Int32(0), 0], PodPhase.succeeded),
        (.never, [0, 1], .failed),
        (.onFailure, [0, 0], .succeeded),
        (.onFailure, [0, 1], .running),
        (.always, [0, 0], .running),
    ])
    func phaseFromExitsAndPolicy(_ policy: RestartPolicy, _ codes: [Int32], _ phase: PodPhase) {
        let pod = Self.pod(policy, containers: ["a", "b"])
        let observations = codes.enumerated().map { PodStatusBuilder.Observation(name: ["a", "b"][$0.offset], image: "busybox", state: Self.exited($0.element)) }
        #expect(PodStatusBuilder.phase(pod, containers: observations, initializing: false) == phase)
    }

    @Test func pendingRunningAndConditions() {
        let pod = Self.pod(.always)
        let creating = PodStatusBuilder.Observation(name: "app", image: "busybox", state: .waiting(reason: "ContainerCreating", message: nil))
        let first = PodStatusBuilder.build(pod: pod, previous: nil, initContainers: [], containers: [creating], initializing: false,
                                           sandboxReady: false, podIPs: [], hostIPs: ["192.168.1.20"], startTime: Self.t0, now: Self.t0)
        #expect(first.phase == .pending && first.qosClass == .bestEffort && first.hostIP == "192.168.1.20" && first.podIP == nil)
        #expect(first.containerStatuses?.first?.state?.waiting?.reason == "ContainerCreating")
        let ready = first.conditions?.first { $0.type == "Ready" }
        #expect(ready?.status == .false && ready?.message == "containers with unready status: [app]")

        let running = PodStatusBuilder.Observation(name: "app", image: "busybox", imageID: "docker.io/library/busybox@sha256:ab", containerID: "iotkube://c1",
                                                   state: .running(startedAt: Self.t1), ready: true, started: true)
        let second = PodStatusBuilder.build(pod: pod, previous: first, initContainers: [], containers: [running], initializing: false,
                                            sandboxReady: true, podIPs: ["10.42.0.5"], hostIPs: ["192.168.1.20"], startTime: Self.t1, now: Self.t1)
        #expect(second.phase == .running && second.podIPs == [PodIP(ip: "10.42.0.5")] && second.startTime == Self.t0, "start time kept")
        #expect(second.conditions?.first { $0.type == "Ready" }?.status == .true)
        #expect(second.conditions?.first { $0.type == "Ready" }?.lastTransitionTime == Self.t1)
        #expect(second.conditions?.first { $0.type == "Initialized" }?.lastTransitionTime == Self.t0, "unchanged conditions keep their time")
        #expect(second.containerStatuses?.first?.started == true && second.containerStatuses?.first?.imageID == "docker.io/library/busybox@sha256:ab")

        // Crash loop: waiting after a run, with the last termination, counts as running.
        let looping = PodStatusBuilder.Observation(name: "app", image: "busybox", state: .waiting(reason: "CrashLoopBackOff", message: "back-off 20s"),
                                                   lastTermination: Self.exited(1), restartCount: 2)
        let third = PodStatusBuilder.build(pod: pod, previous: second, initContainers: [], containers: [looping], initializing: false,
                                           sandboxReady: true, podIPs: ["10.42.0.5"], hostIPs: [], startTime: nil, now: Self.t1)
        #expect(third.phase == .running && third.containerStatuses?.first?.lastState?.terminated?.reason == "Error")
        #expect(third.containerStatuses?.first?.restartCount == 2 && third.containerStatuses?.first?.started == false)
    }

    @Test func qualityOfServiceClasses() throws {
        var pod = Self.pod(.always)
        #expect(PodStatusBuilder.qosClass(pod) == .bestEffort)
        pod.spec?.containers[0].resources = ResourceRequirements(limits: ["cpu": try Quantity(parsing: "1"), "memory": try Quantity(parsing: "64Mi")])
        #expect(PodStatusBuilder.qosClass(pod) == .guaranteed)
        pod.spec?.containers[0].resources?.requests = ["cpu": try Quantity(parsing: "500m")]
        #expect(PodStatusBuilder.qosClass(pod) == .burstable)
    }
}
