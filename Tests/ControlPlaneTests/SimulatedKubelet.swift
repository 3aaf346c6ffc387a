import Foundation
import KubeModel
import IotkubeTestSupport
import Synchronization

/// A stand-in for a node's agent, for controller tests that need many pods to come and go
/// quickly: it reports the pods bound to its node as running and Ready (or failing to pull an
/// image whose reference contains `invalid`) and confirms their deletion, through real kubectl
/// against the real server, as an agent's status writes and deletes would reach it.
final class SimulatedKubelet: @unchecked Sendable {
    let server: ServerProcess
    /// The nodes it plays.
    let nodes: Set<String>
    private let running = Atomic<Bool>(false)
    private let finished = DispatchSemaphore(value: 0)
    /// Nodes whose Lease it renews at every tick (the others are silent, as offline boards).
    let heartbeating = Mutex<Set<String>>([])
    /// Nodes it no longer plays at all (an offline board confirms nothing).
    let offline = Mutex<Set<String>>([])

    convenience init(server: ServerProcess, node: String) throws {
        try self.init(server: server, nodes: [node: [:]])
    }

    /// Registers each node (with its labels) and reports it Ready; it also plays the nodes
    /// named in `later` once a test registers them (``register(_:labels:on:)``).
    init(server: ServerProcess, nodes: [String: [String: String]], later: [String] = []) throws {
        self.server = server
        self.nodes = Set(nodes.keys).union(later)
        for (node, labels) in nodes.sorted(by: { $0.key < $1.key }) { try Self.register(node, labels: labels, on: server) }
    }

    /// Creates a Ready node.
    static func register(_ node: String, labels: [String: String], on server: ServerProcess) throws {
        let labelText = (labels.merging(["kubernetes.io/hostname": node]) { $1 }).map { "\($0.key): \($0.value)" }.sorted().joined(separator: ", ")
        let manifest = "apiVersion: v1\nkind: Node\nmetadata: {name: \(node), labels: {\(labelText)}}\n"
        guard try server.kubectl(["create", "-f", "-"], input: manifest).status == 0 else { throw TestFailure("cannot create node \(node)") }
        let now = Timestamp.now().description
        let status = #"{"status":{"allocatable":{"cpu":"4","memory":"4Gi","pods":"110"},"capacity":{"cpu":"4","memory":"4Gi","pods":"110"},"conditions":[{"type":"Ready","status":"True","reason":"KubeletReady","message":"ready","lastHeartbeatTime":"\#(now)","lastTransitionTime":"\#(now)"}]}}"#
        guard try server.kubectl(["patch", "node", node, "--subresource=status", "--type=merge", "-p", status]).status == 0 else {
            throw TestFailure("cannot make node \(node) Ready")
        }
    }

    /// How many pods of each job this node failed (for `fail-first N`).
    private var failures: [String: Int] = [:]
    /// The address each pod (by uid) was given: 10.42.0.2 onwards, in the order they started.
    private var addresses: [String: String] = [:]
    /// The annotation that makes a running pod report itself not Ready (a failing readiness probe).
    static let unreadyAnnotation = "simulation/unready"

    private func address(of pod: Pod) -> String {
        let uid = pod.metadata.uid ?? ""
        if let known = addresses[uid] { return known }
        let number = addresses.count + 2
        let address = "10.42.\(number / 250).\(number % 250 + 2)"
        addresses[uid] = address
        return address
    }

    /// What a pod's command asks the simulation for: `exit N` ends it with that code,
    /// `fail-first N` fails the first N pods of its job and lets the next one succeed; nil
    /// keeps it running.
    static func outcome(of pod: Pod, failures: inout [String: Int]) -> Int? {
        let command = (pod.spec?.containers ?? []).flatMap { ($0.command ?? []) + ($0.args ?? []) }.joined(separator: " ")
        if let range = command.range(of: "fail-first ") {
            let count = Int(command[range.upperBound...].prefix { $0.isNumber }) ?? 0
            let job = pod.metadata.labels?["job-name"] ?? ""
            if failures[job, default: 0] < count {
                failures[job, default: 0] += 1
                return 1
            }
            return 0
        }
        if let range = command.range(of: "exit ") { return Int(command[range.upperBound...].prefix { $0.isNumber }) ?? 1 }
        return nil
    }

    /// Runs ``tick()`` on a thread of its own until ``stop()``.
    func start() {
        running.store(true, ordering: .relaxed)
        let thread = Thread { [self] in
            while running.load(ordering: .relaxed) {
                tick()
                Thread.sleep(forTimeInterval: 0.2)
            }
            finished.signal()
        }
        thread.start()
    }

    func stop() {
        guard running.exchange(false, ordering: .relaxed) else { return }
        _ = finished.wait(timeout: .now() + 60)
    }

    /// One look at the node's pods: each gets the status its image earns, deleted ones go.
    func tick() {
        for node in heartbeating.withLock({ $0 }).sorted() {
            let lease = "apiVersion: coordination.k8s.io/v1\nkind: Lease\nmetadata: {name: \(node), namespace: kube-node-lease}\nspec: {holderIdentity: \(node), leaseDurationSeconds: 40, renewTime: \"\(MicroTimestamp.now())\"}\n"
            _ = try? server.kubectl(["apply", "-f", "-"], input: lease)
        }
        let query = nodes.count == 1 ? ["--field-selector", "spec.nodeName=\(nodes.first!)"] : []
        guard let result = try? server.kubectl(["get", "pods", "-A", "-o", "json"] + query), result.status == 0,
              let list = try? KubeJSON.parse(Array(result.output.utf8)), let items = list["items"]?.arrayValue else { return }
        for item in items {
            guard let pod = try? KubeJSON.decode(Pod.self, from: item), let name = pod.metadata.name, let namespace = pod.metadata.namespace,
                  let node = pod.spec?.nodeName, nodes.contains(node), !offline.withLock({ $0.contains(node) }) else { continue }
            if pod.metadata.deletionTimestamp != nil {
                _ = try? server.kubectl(["delete", "pod", name, "-n", namespace, "--grace-period=0", "--force", "--wait=false"])
                continue
            }
            let containers = pod.spec?.containers ?? []
            let broken = containers.contains { ($0.image ?? "").contains("invalid") }
            guard pod.status?.phase != .succeeded, pod.status?.phase != .failed else { continue }
            let outcome = Self.outcome(of: pod, failures: &failures)
            let wanted: PodPhase = broken ? .pending : outcome.map { $0 == 0 ? .succeeded : .failed } ?? .running
            let ready = broken || outcome != nil || pod.metadata.annotations?[Self.unreadyAnnotation] == "true" ? "False" : "True"
            let reportedReady = pod.status?.conditions?.first { $0.type == "Ready" }?.status.rawValue
            guard pod.status?.phase != wanted || pod.status?.containerStatuses == nil || reportedReady != ready else { continue }
            let now = Timestamp.now().description
            let statuses = containers.map { container -> String in
                var state = broken ? #"{"waiting":{"reason":"ErrImagePull","message":"image not found"}}"# : #"{"running":{"startedAt":"\#(now)"}}"#
                if let outcome { state = #"{"terminated":{"exitCode":\#(outcome),"reason":"\#(outcome == 0 ? "Completed" : "Error")","startedAt":"\#(now)","finishedAt":"\#(now)"}}"# }
                let running = !broken && outcome == nil
                return #"{"name":"\#(container.name)","image":"\#(container.image ?? "")","imageID":"","ready":\#(running && ready == "True"),"restartCount":0,"started":\#(running),"state":\#(state)}"#
            }.joined(separator: ",")
            let patch = #"{"status":{"phase":"\#(wanted.rawValue)","podIP":"\#(address(of: pod))","conditions":[{"type":"PodScheduled","status":"True","lastTransitionTime":"\#(now)"},{"type":"Initialized","status":"True","lastTransitionTime":"\#(now)"},{"type":"ContainersReady","status":"\#(ready)","lastTransitionTime":"\#(now)"},{"type":"Ready","status":"\#(ready)","lastTransitionTime":"\#(now)"}],"containerStatuses":[\#(statuses)]}}"#
            _ = try? server.kubectl(["patch", "pod", name, "-n", namespace, "--subresource=status", "--type=merge", "-p", patch])
        }
    }
}
