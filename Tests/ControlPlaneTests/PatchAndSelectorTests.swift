import KubeModel
import IotkubeTestSupport
import Testing

@testable import ControlPlane

/// Patch formats, selectors, routes and the scheduler's decisions, without a server.
@Suite(.ownThread)
struct PatchAndSelectorTests {
    static func tree(_ text: String) throws -> JSONValue { try KubeJSON.parse(Array(text.utf8)) }

    @Test func mergePatchFollowsRFC7386() throws {
        let target = try Self.tree(#"{"a":"b","c":{"d":"e","f":"g"},"list":[1,2]}"#)
        let patch = try Self.tree(#"{"a":"z","c":{"f":null},"list":[3],"new":{"x":1}}"#)
        #expect(Patch.merge(target, patch) == (try Self.tree(#"{"a":"z","c":{"d":"e"},"list":[3],"new":{"x":1}}"#)))
        #expect(Patch.merge(target, .string("replace")) == .string("replace"))
    }

    @Test func strategicMergeMergesContainersByName() throws {
        let pod = try Self.tree(#"{"spec":{"containers":[{"name":"a","image":"x","env":[{"name":"K","value":"1"}]},{"name":"b","image":"y"}],"finalizers":["f1"]},"metadata":{"finalizers":["f1"]}}"#)
        let patch = try Self.tree(#"{"metadata":{"finalizers":["f2"]},"spec":{"$setElementOrder/containers":[{"name":"b"},{"name":"a"}],"containers":[{"name":"a","image":"x2","env":[{"name":"L","value":"2"}]},{"name":"c","image":"z"}]}}"#)
        let result = try Patch.strategicMerge(pod, patch)
        guard case .array(let containers)? = result[path: ["spec", "containers"]] else {
            Issue.record("containers missing")
            return
        }
        #expect(containers.map { $0["name"] } == ["b", "a", "c"])
        #expect(containers[1]["image"] == "x2")
        #expect(containers[1]["env"] == [["name": "K", "value": "1"], ["name": "L", "value": "2"]])
        #expect(result[path: ["metadata", "finalizers"]] == ["f1", "f2"])

        let deletion = try Patch.strategicMerge(pod, try Self.tree(#"{"spec":{"containers":[{"name":"b","$patch":"delete"}]}}"#))
        guard case .array(let remaining)? = deletion[path: ["spec", "containers"]] else { return }
        #expect(remaining.map { $0["name"] } == ["a"])

        let replaced = try Patch.strategicMerge(pod, try Self.tree(#"{"spec":{"$patch":"replace","containers":[{"name":"only","image":"i"}]}}"#))
        #expect(replaced["spec"] == ["containers": [["name": "only", "image": "i"]]])

        let removed = try Patch.strategicMerge(pod, try Self.tree(#"{"metadata":{"$deleteFromPrimitiveList/finalizers":["f1"]}}"#))
        #expect(removed[path: ["metadata", "finalizers"]] == [])
        #expect(throws: APIError.self) { try Patch.strategicMerge(pod, try Self.tree(#"{"spec":{"containers":[{"image":"no-name"}]}}"#)) }
    }

    @Test func jsonPatchOperations() throws {
        let document = try Self.tree(#"{"metadata":{"labels":{"a":"1"}},"list":[1,2,3]}"#)
        let patch = try Self.tree(#"[{"op":"add","path":"/metadata/labels/b~1c","value":"2"},{"op":"remove","path":"/list/0"},{"op":"replace","path":"/metadata/labels/a","value":"9"},{"op":"test","path":"/list/0","value":2},{"op":"copy","from":"/list/1","path":"/list/-"},{"op":"move","from":"/metadata/labels/a","path":"/moved"}]"#)
        #expect(try Patch.jsonPatch(document, patch) == (try Self.tree(#"{"metadata":{"labels":{"b/c":"2"}},"list":[2,3,3],"moved":"9"}"#)))
        #expect(throws: APIError.self) { try Patch.jsonPatch(document, try Self.tree(#"[{"op":"test","path":"/list/0","value":5}]"#)) }
        #expect(throws: APIError.self) { try Patch.jsonPatch(document, try Self.tree(#"[{"op":"remove","path":"/nope"}]"#)) }
        #expect(throws: APIError.self) { try Patch.jsonPatch(document, try Self.tree(#"{"op":"add"}"#)) }
    }

    @Test func labelSelectors() throws {
        let labels = ["app": "web", "tier": "frontend", "env": "prod"]
        for (selector, expected) in [("app=web", true), ("app==web,tier=frontend", true), ("app!=web", false), ("env in (prod,staging)", true),
                                     ("env notin (prod)", false), ("tier", true), ("!tier", false), ("!missing", true), ("missing", false),
                                     ("", true), ("app=web,env in (dev)", false)] {
            #expect(try LabelQuery(parsing: selector).matches(labels) == expected, "\(selector)")
        }
        #expect(throws: APIError.self) { try LabelQuery(parsing: "env in prod") }
        #expect(throws: APIError.self) { try LabelQuery(parsing: "bad key") }
    }

    @Test func fieldSelectors() throws {
        let pod = try Self.tree(#"{"metadata":{"name":"p","namespace":"default"},"spec":{"nodeName":"pi"},"status":{"phase":"Running"}}"#)
        #expect(try FieldSelector(parsing: "spec.nodeName=pi", resource: .pods).matches(pod))
        #expect(try FieldSelector(parsing: "spec.nodeName=pi,status.phase!=Failed", resource: .pods).matches(pod))
        #expect(!(try FieldSelector(parsing: "metadata.name=q", resource: .pods).matches(pod)))
        #expect(try FieldSelector(parsing: "spec.nodeName=", resource: .pods).matches(try Self.tree(#"{"spec":{}}"#)))
        #expect(throws: APIError.self) { try FieldSelector(parsing: "spec.nodeName=pi", resource: .configMaps) }
    }

    @Test func routes() throws {
        #expect(try RequestRoute.parse("/api/v1/namespaces/default/pods/web/status")
            == RequestRoute(resource: .pods, namespace: "default", name: "web", subresource: "status"))
        #expect(try RequestRoute.parse("/api/v1/namespaces/default") == RequestRoute(resource: .namespaces, name: "default"))
        #expect(try RequestRoute.parse("/api/v1/namespaces") == RequestRoute(resource: .namespaces))
        #expect(try RequestRoute.parse("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/pi")
            == RequestRoute(resource: .leases, namespace: "kube-node-lease", name: "pi"))
        #expect(try RequestRoute.parse("/api/v1/watch/namespaces/default/pods") == RequestRoute(resource: .pods, namespace: "default", legacyWatch: true))
        #expect(try RequestRoute.parse("/healthz") == nil)
        #expect(throws: APIError.self) { try RequestRoute.parse("/api/v1/namespaces/default/nodes") }
        #expect(throws: APIError.self) { try RequestRoute.parse("/api/v1/namespaces/default/pods/web/ephemeralcontainers") }
        #expect(try RequestRoute.parse("/api/v1/namespaces/default/pods/web/exec") == RequestRoute(resource: .pods, namespace: "default", name: "web", subresource: "exec"))
        #expect(try RequestRoute.parse("/apis/apps/v1/namespaces/default/deployments/web/scale")
            == RequestRoute(resource: .deployments, namespace: "default", name: "web", subresource: "scale"))
        #expect(throws: APIError.self) { try RequestRoute.parse("/apis/apps/v1/namespaces/default/statefulsets") }
    }

    static func node(_ name: String, ready: Bool = true, labels: [String: String] = [:], cpu: String = "2", taints: [Taint]? = nil) -> Node {
        var node = Node(metadata: ObjectMeta(name: name, labels: labels))
        var status = NodeStatus()
        status.allocatable = ["cpu": Quantity(stringLiteral: cpu), "memory": "2Gi", "pods": "10"]
        status.conditions = [NodeCondition(type: "Ready", status: ready ? .true : .false)]
        node.status = status
        var spec = NodeSpec()
        spec.taints = taints
        node.spec = spec
        return node
    }

    static func pod(cpu: String = "500m", selector: [String: String]? = nil, tolerations: [Toleration]? = nil) -> Pod {
        var container = Container(name: "c", image: "i")
        container.resources = ResourceRequirements(requests: ["cpu": Quantity(stringLiteral: cpu)])
        var spec = PodSpec(containers: [container])
        spec.nodeSelector = selector
        spec.tolerations = tolerations
        return Pod(metadata: ObjectMeta(name: "p", namespace: "default"), spec: spec)
    }

    @Test func schedulerDecisions() {
        let nodes = [Self.node("a", cpu: "1"), Self.node("b", cpu: "4"), Self.node("down", ready: false)]
        #expect(Scheduler.decide(Self.pod(), nodes: nodes, podsByNode: [:]) == .bind("b"))
        #expect(Scheduler.decide(Self.pod(cpu: "3"), nodes: nodes, podsByNode: ["b": [Self.pod(cpu: "2")]])
            == .unschedulable("0/3 nodes are available: 2 Insufficient cpu, 1 node(s) were not ready."))
        #expect(Scheduler.decide(Self.pod(selector: ["zone": "x"]), nodes: [Self.node("a", labels: ["zone": "x"]), Self.node("b")], podsByNode: [:]) == .bind("a"))
        let tainted = [Self.node("t", taints: [Taint(key: "dedicated", value: "sensors", effect: .noSchedule)])]
        #expect(Scheduler.decide(Self.pod(), nodes: tainted, podsByNode: [:]) == .unschedulable("0/1 nodes are available: 1 node(s) had untolerated taint {dedicated: sensors}."))
        #expect(Scheduler.decide(Self.pod(tolerations: [Toleration(key: "dedicated", operator: .equal, value: "sensors", effect: .noSchedule)]), nodes: tainted, podsByNode: [:]) == .bind("t"))
        #expect(Scheduler.decide(Self.pod(tolerations: [Toleration(operator: .exists)]), nodes: tainted, podsByNode: [:]) == .bind("t"))
        #expect(Scheduler.decide(Self.pod(), nodes: [], podsByNode: [:]) == .unschedulable("0/0 nodes are available: no nodes registered."))
        let preferNot = [Self.node("p", taints: [Taint(key: "soft", effect: .preferNoSchedule)])]
        #expect(Scheduler.decide(Self.pod(), nodes: preferNot, podsByNode: [:]) == .bind("p"))
    }

    /// Extended resources (devices) count like CPU: a node without one has none; sums saturate.
    @Test func schedulerCountsDevices() {
        func withDevices(_ node: Node, _ amount: String) -> Node {
            var node = node
            node.status?.allocatable?["devices.iotkube.io/i2c"] = Quantity(stringLiteral: amount)
            return node
        }
        func devicePod(_ count: String) -> Pod {
            var pod = Self.pod()
            pod.spec?.containers[0].resources?.limits = ["devices.iotkube.io/i2c": Quantity(stringLiteral: count)]
            return pod
        }
        let nodes = [Self.node("plain", cpu: "8"), withDevices(Self.node("pi"), "2")]
        #expect(Scheduler.decide(devicePod("1"), nodes: nodes, podsByNode: [:]) == .bind("pi"))
        #expect(Scheduler.decide(devicePod("2"), nodes: nodes, podsByNode: ["pi": [devicePod("1")]])
            == .unschedulable("0/2 nodes are available: 2 Insufficient devices.iotkube.io/i2c."))
        let huge = "9223372036854775807"
        #expect(Scheduler.decide(devicePod(huge), nodes: nodes, podsByNode: ["pi": [devicePod(huge), devicePod(huge)]])
            == .unschedulable("0/2 nodes are available: 2 Insufficient devices.iotkube.io/i2c."))
        // A pod without devices still goes anywhere it fits.
        #expect(Scheduler.decide(Self.pod(), nodes: nodes, podsByNode: [:]) == .bind("plain"))
    }

    @Test func ages() throws {
        let now = try Timestamp(rfc3339: "2026-11-23T12:00:00Z")
        for (created, expected) in [("2026-11-23T11:59:15Z", "45s"), ("2026-11-23T11:56:48Z", "3m12s"), ("2026-11-23T11:30:00Z", "30m"),
                                    ("2026-11-23T07:00:00Z", "5h"), ("2026-11-20T12:00:00Z", "3d")] {
            #expect(TableConverter.ageText(created, now: now) == expected)
        }
        #expect(TableConverter.ageText(nil, now: now) == "<unknown>")
    }
}
