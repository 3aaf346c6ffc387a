import Foundation
import IotkubeTestSupport
import KubeModel
import Testing

@testable import ControlPlane

/// One number from an authenticated client, or one already in the store, never stops the
/// server: delete grace periods and resource sums saturate, absurd fields get a 422.
@Suite(.ownThread, .serialized)
struct NumericBoundsTests {
    static let hugeCPUPod = #"""
    {"apiVersion":"v1","kind":"Pod","metadata":{"name":"NAME"},"spec":{NODE"containers":[
     {"name":"a","image":"busybox","resources":{"requests":{"cpu":"9223372036854775807","memory":"9223372036854775807"}}},
     {"name":"b","image":"busybox","resources":{"requests":{"cpu":"9223372036854775807","memory":"9223372036854775807"}}}]}}
    """#

    static func pod(_ name: String, nodeName: String? = nil) -> String {
        hugeCPUPod.replacingOccurrences(of: "NAME", with: name)
            .replacingOccurrences(of: "NODE", with: nodeName.map { #""nodeName":"\#($0)","# } ?? "")
    }

    static let node = #"{"apiVersion":"v1","kind":"Node","metadata":{"name":"n1"}}"#

    @Test(.enabled(if: toolAvailable("curl"), "curl is not installed"))
    func deleteWithTheLargestGracePeriodKeepsTheServerUp() throws {
        let server = try ServerProcess()
        let api = try APIRequester(server)
        #expect(try api.send("POST", "/api/v1/nodes", body: Self.node).code == 201)
        #expect(try api.send("POST", "/api/v1/namespaces/default/pods", body: Self.pod("bound", nodeName: "n1")).code == 201)

        let deleted = try api.send("DELETE", "/api/v1/namespaces/default/pods/bound?gracePeriodSeconds=9223372036854775807")
        #expect(deleted.code == 200, "\(deleted.body)")
        #expect(deleted.body.contains(#""deletionTimestamp":"9999-12-31T23:59:59Z""#), "\(deleted.body)")
        #expect(server.process.isRunning, "\(server.serverLog.suffix(2000))")

        // kube-apiserver's pod strategy: a negative period becomes 1 second.
        #expect(try api.send("POST", "/api/v1/namespaces/default/pods", body: Self.pod("negative", nodeName: "n1")).code == 201)
        let negative = try api.send("DELETE", "/api/v1/namespaces/default/pods/negative", body: #"{"gracePeriodSeconds":-9223372036854775808}"#)
        #expect(negative.code == 200 && negative.body.contains(#""deletionGracePeriodSeconds":1"#), "\(negative.body)")

        // Not an Int64: a 422 naming the field, and the pod is left alone.
        #expect(try api.send("POST", "/api/v1/namespaces/default/pods", body: Self.pod("kept", nodeName: "n1")).code == 201)
        for (query, body) in [("?gracePeriodSeconds=9223372036854775808", nil), ("", #"{"gracePeriodSeconds":1e308}"#), ("", #"{"gracePeriodSeconds":"10"}"#)] {
            let refused = try api.send("DELETE", "/api/v1/namespaces/default/pods/kept\(query)", body: body)
            #expect(refused.code == 422 && refused.body.contains(#""field":"gracePeriodSeconds""#), "\(refused.body)")
        }
        let kept = try api.send("GET", "/api/v1/namespaces/default/pods/kept")
        #expect(kept.code == 200 && !kept.body.contains("deletionTimestamp"), "\(kept.body)")
        #expect(server.process.isRunning)
    }

    /// Extended resources (devices) are whole and never overcommitted, as kube-apiserver says.
    @Test(.enabled(if: toolAvailable("curl"), "curl is not installed"))
    func devicesAreWholeAndARequestNeedsAnEqualLimit() throws {
        let server = try ServerProcess()
        let api = try APIRequester(server)
        func pod(_ resources: String) -> String {
            #"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"d"},"spec":{"containers":[{"name":"a","image":"busybox","resources":RES}]}}"#
                .replacingOccurrences(of: "RES", with: resources)
        }
        for (resources, field, message) in [
            (#"{"limits":{"devices.iotkube.io/i2c":"500m"}}"#, "spec.containers[0].resources.limits[devices.iotkube.io/i2c]", "must be an integer"),
            (#"{"requests":{"devices.iotkube.io/i2c":"1"}}"#, "spec.containers[0].resources.limits", "Limit must be set for non overcommitable resources"),
            (#"{"requests":{"devices.iotkube.io/i2c":"1"},"limits":{"devices.iotkube.io/i2c":"2"}}"#, "spec.containers[0].resources.requests",
             "must be equal to devices.iotkube.io/i2c limit of 2"),
            (#"{"limits":{"devices.iotkube.io/i2c":"-1"}}"#, "spec.containers[0].resources.limits[devices.iotkube.io/i2c]", "must be greater than or equal to 0"),
            (#"{"requests":{"cpu":"-100m"}}"#, "spec.containers[0].resources.requests[cpu]", "must be greater than or equal to 0"),
        ] {
            let refused = try api.send("POST", "/api/v1/namespaces/default/pods", body: pod(resources))
            #expect(refused.code == 422 && refused.body.contains(#""field":"\#(field)""#) && refused.body.contains(message), "\(resources): \(refused.body)")
        }
        let overhead = try api.send("POST", "/api/v1/namespaces/default/pods",
                                    body: #"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"o"},"spec":{"overhead":{"memory":"-1Mi"},"containers":[{"name":"a","image":"busybox"}]}}"#)
        #expect(overhead.code == 422 && overhead.body.contains(#""field":"spec.overhead[memory]""#), "\(overhead.body)")
        let created = try api.send("POST", "/api/v1/namespaces/default/pods", body: pod(#"{"requests":{"devices.iotkube.io/i2c":"2"},"limits":{"devices.iotkube.io/i2c":"2"}}"#))
        #expect(created.code == 201, "\(created.body)")
        #expect(server.process.isRunning)
    }

    @Test(.enabled(if: toolAvailable("curl"), "curl is not installed"))
    func absurdRequestsLeaveAPodPendingAndTheServerUp() throws {
        let server = try ServerProcess()
        let api = try APIRequester(server)
        #expect(try api.send("POST", "/api/v1/nodes", body: Self.node).code == 201)
        #expect(try api.send("POST", "/api/v1/namespaces/default/pods", body: Self.pod("greedy")).code == 201)
        try Self.waitForUnschedulable(api, "greedy")
        #expect(server.process.isRunning, "\(server.serverLog.suffix(2000))")
    }

    /// Objects an older server stored without bounds do not crash-loop a new one at start.
    @Test(.enabled(if: toolAvailable("curl"), "curl is not installed"))
    func absurdObjectsAlreadyStoredDoNotStopTheServerAtStart() throws {
        let server = try ServerProcess()
        server.stop()
        let store = try ObjectStore(path: server.directory.appendingPathComponent("state.db").path)
        func tree(_ text: String, namespace: String = "default") throws -> JSONValue {
            var object = try KubeJSON.parse(Array(text.utf8))
            object.set(["metadata", "namespace"], namespace.isEmpty ? nil : .string(namespace))
            return object
        }
        _ = try store.create(.nodes, namespace: "", name: "n1", object: try tree(
            #"{"apiVersion":"v1","kind":"Node","metadata":{"name":"n1"},"status":{"allocatable":{"cpu":"170000000000000000000000000000","memory":"9999999999999999999Ei","pods":"9223372036854775807"},"#
                + #""conditions":[{"type":"Ready","status":"True","lastHeartbeatTime":"0000-01-01T00:00:00Z"}]}}"#, namespace: ""))
        _ = try store.create(.pods, namespace: "default", name: "greedy", object: try tree(Self.pod("greedy")))
        let bound = Self.pod("bound", nodeName: "n1").replacingOccurrences(of: #""spec":{"#, with: #""spec":{"terminationGracePeriodSeconds":9223372036854775807,"#)
        _ = try store.create(.pods, namespace: "default", name: "bound", object: try tree(bound))
        try server.resume()
        let api = try APIRequester(server)
        try Self.waitForUnschedulable(api, "greedy", orBoundTo: "n1")
        let deleted = try api.send("DELETE", "/api/v1/namespaces/default/pods/bound")
        #expect(deleted.code == 200 && deleted.body.contains("9999-12-31T23:59:59Z"), "\(deleted.body)")
        Thread.sleep(forTimeInterval: 1)
        #expect(server.process.isRunning, "\(server.serverLog.suffix(2000))")
    }

    /// Waits until the scheduler has looked at the pod and left it pending (PodScheduled=False),
    /// or bound it to `node`.
    static func waitForUnschedulable(_ api: APIRequester, _ name: String, orBoundTo node: String? = nil) throws {
        for _ in 0..<100 {
            let pod = try api.send("GET", "/api/v1/namespaces/default/pods/\(name)")
            if pod.body.contains(#""reason":"Unschedulable""#) { return }
            if let node, pod.body.contains(#""nodeName":"\#(node)""#) { return }
            guard api.server.process.isRunning else { throw TestFailure("the server stopped: \(api.server.serverLog.suffix(2000))") }
            Thread.sleep(forTimeInterval: 0.1)
        }
        throw TestFailure("the scheduler never marked \(name) unschedulable")
    }
}

/// Real HTTPS requests with the admin's client certificate (curl), answering code and body;
/// a dropped connection is code 0.
struct APIRequester {
    let server: ServerProcess
    let credentials: [String]

    init(_ server: ServerProcess) throws {
        self.server = server
        credentials = try RobustnessTests.adminCredentials(server)
    }

    func send(_ method: String, _ path: String, body: String? = nil, contentType: String = "application/json") throws -> (code: Int, body: String) {
        var arguments = credentials + ["-X", method, "-H", "Content-Type: \(contentType)", "https://127.0.0.1:\(server.port)\(path)"]
        if let body {
            let file = server.directory.appendingPathComponent("body-\(UUID().uuidString)")
            try body.write(to: file, atomically: true, encoding: .utf8)
            arguments += ["--data-binary", "@\(file.path)"]
        }
        let output = try RobustnessTests.curl(server, arguments).output
        guard let marker = output.range(of: "\nHTTP ", options: .backwards) else { return (0, output) }
        return (Int(output[marker.upperBound...].prefix(3)) ?? 0, String(output[..<marker.lowerBound]))
    }
}

/// Every numeric field kube-apiserver bounds is refused out of range with a 422 naming it,
/// and a refused object is not stored.
@Suite(.ownThread, .serialized)
struct NumericFieldRulesTests {
    /// A pod whose spec (after `containers`) and first container carry the given JSON members.
    static func pod(spec: String = "", container: String = "") -> String {
        #"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"c","image":"busybox""#
            + (container.isEmpty ? "" : ",\(container)") + "}]" + (spec.isEmpty ? "" : ",\(spec)") + "}}"
    }

    static let cases: [(path: String, body: String, field: String)] = {
        let pods = "/api/v1/namespaces/default/pods"
        let volume = { (source: String) in #""volumes":[{"name":"v",\#(source)}]"# }
        return [
            (pods, pod(spec: #""terminationGracePeriodSeconds":-1"#), "spec.terminationGracePeriodSeconds"),
            (pods, pod(spec: #""activeDeadlineSeconds":0"#), "spec.activeDeadlineSeconds"),
            (pods, pod(spec: #""activeDeadlineSeconds":9223372036854775807"#), "spec.activeDeadlineSeconds"),
            (pods, pod(spec: #""securityContext":{"runAsUser":2147483648}"#), "spec.securityContext.runAsUser"),
            (pods, pod(spec: #""securityContext":{"runAsGroup":-1}"#), "spec.securityContext.runAsGroup"),
            (pods, pod(spec: #""securityContext":{"fsGroup":9223372036854775807}"#), "spec.securityContext.fsGroup"),
            (pods, pod(spec: #""securityContext":{"supplementalGroups":[-5]}"#), "spec.securityContext.supplementalGroups[0]"),
            (pods, pod(container: #""securityContext":{"runAsUser":-1}"#), "spec.containers[0].securityContext.runAsUser"),
            (pods, pod(container: #""ports":[{"containerPort":65536}]"#), "spec.containers[0].ports[0].containerPort"),
            (pods, pod(container: #""ports":[{"containerPort":80,"hostPort":70000}]"#), "spec.containers[0].ports[0].hostPort"),
            (pods, pod(container: #""livenessProbe":{"exec":{"command":["true"]},"initialDelaySeconds":-1}"#), "spec.containers[0].livenessProbe.initialDelaySeconds"),
            (pods, pod(container: #""livenessProbe":{"exec":{"command":["true"]},"periodSeconds":-2147483648}"#), "spec.containers[0].livenessProbe.periodSeconds"),
            (pods, pod(container: #""livenessProbe":{"exec":{"command":["true"]},"terminationGracePeriodSeconds":0}"#), "spec.containers[0].livenessProbe.terminationGracePeriodSeconds"),
            (pods, pod(container: #""lifecycle":{"preStop":{"sleep":{"seconds":9223372036854775807}}}"#), "spec.containers[0].lifecycle.preStop.sleep.seconds"),
            (pods, pod(container: #""resources":{"requests":{"cpu":"-1"}}"#), "spec.containers[0].resources.requests[cpu]"),
            (pods, pod(container: #""env":[{"name":"X","valueFrom":{"resourceFieldRef":{"resource":"limits.cpu","divisor":"0"}}}]"#), "spec.containers[0].env[0].valueFrom.resourceFieldRef.divisor"),
            (pods, pod(spec: volume(#""emptyDir":{"sizeLimit":"-1Gi"}"#)), "spec.volumes[0].emptyDir.sizeLimit"),
            (pods, pod(spec: volume(#""configMap":{"name":"x","defaultMode":512}"#)), "spec.volumes[0].configMap.defaultMode"),
            (pods, pod(spec: volume(#""secret":{"secretName":"x","items":[{"key":"k","path":"p","mode":-1}]}"#)), "spec.volumes[0].secret.items[0].mode"),
            (pods, pod(spec: volume(#""downwardAPI":{"items":[{"path":"p","resourceFieldRef":{"resource":"limits.memory","divisor":"3"}}]}"#)), "spec.volumes[0].downwardAPI.items[0].resourceFieldRef.divisor"),
            (pods, pod(spec: volume(#""projected":{"sources":[{"serviceAccountToken":{"path":"t","expirationSeconds":1}}]}"#)), "spec.volumes[0].projected.sources[0].serviceAccountToken.expirationSeconds"),
            ("/api/v1/nodes", #"{"apiVersion":"v1","kind":"Node","metadata":{"name":"n"},"status":{"capacity":{"cpu":"-1"}}}"#, "status.capacity[cpu]"),
            ("/api/v1/nodes", #"{"apiVersion":"v1","kind":"Node","metadata":{"name":"n"},"status":{"daemonEndpoints":{"kubeletEndpoint":{"Port":70000}}}}"#, "status.daemonEndpoints.kubeletEndpoint.Port"),
            ("/apis/coordination.k8s.io/v1/namespaces/default/leases", #"{"apiVersion":"coordination.k8s.io/v1","kind":"Lease","metadata":{"name":"l"},"spec":{"leaseDurationSeconds":0}}"#, "spec.leaseDurationSeconds"),
            ("/apis/coordination.k8s.io/v1/namespaces/default/leases", #"{"apiVersion":"coordination.k8s.io/v1","kind":"Lease","metadata":{"name":"l"},"spec":{"leaseTransitions":-1}}"#, "spec.leaseTransitions"),
            ("/apis/certificates.k8s.io/v1/certificatesigningrequests",
             #"{"apiVersion":"certificates.k8s.io/v1","kind":"CertificateSigningRequest","metadata":{"name":"c"},"spec":{"request":"","signerName":"kubernetes.io/kube-apiserver-client","usages":["client auth"],"expirationSeconds":599}}"#,
             "spec.expirationSeconds"),
        ]
    }()

    @Test(.enabled(if: toolAvailable("curl"), "curl is not installed"))
    func outOfRangeNumbersAreRefusedNamingTheField() throws {
        let server = try ServerProcess()
        let api = try APIRequester(server)
        for (path, body, field) in Self.cases {
            let answer = try api.send("POST", path, body: body)
            #expect(answer.code == 422 && answer.body.contains(#""field":"\#(field)""#), "\(field): \(answer.code) \(answer.body.prefix(600))")
        }
        for path in ["/api/v1/namespaces/default/pods/p", "/api/v1/nodes/n", "/apis/coordination.k8s.io/v1/namespaces/default/leases/l"] {
            #expect(try api.send("GET", path).code == 404, "a refused object was stored: \(path)")
        }
        #expect(server.process.isRunning)
    }
}
