import IotkubeTestSupport
import Testing

@testable import KubeModel

/// What the model encodes passes the official Kubernetes JSON schemas (strict, v1.30).
@Suite(.ownThread)
struct SchemaValidationTests {
    static let available = SchemaValidator.executable != nil || SchemaValidator.required

    /// Objects built in code the way the agent and server will build them. (The validator has no
    /// schema for Status and cannot check List kinds; ``ListAndWatchCodingTests`` covers those.)
    static func builtObjects() throws -> [(name: String, json: [UInt8])] {
        let now = try Timestamp(rfc3339: "2026-11-23T10:00:00.250Z")

        var container = Container(name: "app", image: "busybox", command: ["sleep", "3600"])
        container.resources = ResourceRequirements(limits: ["memory": "64Mi", "cpu": "250m"], requests: ["cpu": "0.1"])
        var probe = Probe()
        probe.httpGet = HTTPGetAction(port: "http", path: "/healthz")
        probe.periodSeconds = 5
        container.livenessProbe = probe
        container.ports = [ContainerPort(containerPort: 8080, name: "http", protocol: .tcp)]
        container.env = [EnvVar(name: "NODE", valueFrom: {
            var source = EnvVarSource()
            source.fieldRef = ObjectFieldSelector(fieldPath: "spec.nodeName")
            return source
        }())]
        var spec = PodSpec(containers: [container])
        spec.restartPolicy = .always
        spec.nodeName = "pi-kitchen"
        var volume = Volume(name: "cache")
        volume.emptyDir = EmptyDirVolumeSource(medium: .memory, sizeLimit: "16Mi")
        spec.volumes = [volume]
        var status = PodStatus(phase: .running)
        status.conditions = [PodCondition(type: "Ready", status: .true, lastTransitionTime: now)]
        var containerStatus = ContainerStatus(name: "app", image: "busybox:latest", imageID: "sha256:abc", ready: true, restartCount: 2)
        containerStatus.state = ContainerState(running: ContainerStateRunning(startedAt: now))
        var terminated = ContainerStateTerminated(exitCode: 137, reason: "OOMKilled")
        terminated.finishedAt = now
        containerStatus.lastState = ContainerState(terminated: terminated)
        status.containerStatuses = [containerStatus]
        status.podIPs = [PodIP(ip: "10.42.0.5")]
        status.startTime = now
        status.qosClass = .burstable
        let pod = Pod(metadata: ObjectMeta(name: "app", namespace: "default", labels: ["app": "demo"]), spec: spec, status: status)

        var nodeStatus = NodeStatus()
        nodeStatus.capacity = ["cpu": "4", "memory": .bytes(4 << 30), "pods": "110"]
        nodeStatus.allocatable = ["cpu": "3800m", "memory": .bytes(3 << 30), "pods": "110"]
        var ready = NodeCondition(type: "Ready", status: .true, reason: "KubeletReady", message: "iotkube-agent is posting ready status")
        ready.lastHeartbeatTime = now
        ready.lastTransitionTime = now
        nodeStatus.conditions = [ready]
        nodeStatus.addresses = [NodeAddress(type: "InternalIP", address: "192.168.1.40"), NodeAddress(type: "Hostname", address: "pi-kitchen")]
        nodeStatus.daemonEndpoints = NodeDaemonEndpoints(kubeletEndpoint: DaemonEndpoint(port: 10250))
        var info = NodeSystemInfo()
        info.machineID = "4c4c4544004e3610804bb2c04f305832"
        info.systemUUID = "4c4c4544-004e-3610-804b-b2c04f305832"
        info.bootID = "e1f2d3c4"
        info.kernelVersion = "6.1.0"
        info.osImage = "Debian GNU/Linux 12 (bookworm)"
        info.containerRuntimeVersion = "iotkube://0.1.0"
        info.kubeletVersion = "v1.30.0-iotkube"
        info.architecture = "arm64"
        nodeStatus.nodeInfo = info
        nodeStatus.images = [ContainerImage(names: ["busybox:latest"], sizeBytes: 2_000_000)]
        var nodeSpec = NodeSpec()
        nodeSpec.podCIDR = "10.42.3.0/24"
        nodeSpec.taints = [Taint(key: "iotkube.io/battery", value: "low", effect: .noSchedule)]
        let node = Node(metadata: ObjectMeta(name: "pi-kitchen", labels: ["kubernetes.io/arch": "arm64"]), spec: nodeSpec, status: nodeStatus)

        let lease = Lease(
            metadata: ObjectMeta(name: "pi-kitchen", namespace: "kube-node-lease"),
            spec: LeaseSpec(holderIdentity: "pi-kitchen", leaseDurationSeconds: 40, renewTime: MicroTimestamp(now)))

        var event = Event(
            metadata: ObjectMeta(name: "app.1", namespace: "default"),
            involvedObject: ObjectReference(kind: "Pod", namespace: "default", name: "app", uid: "u1", apiVersion: "v1"),
            reason: "Started", message: "Started container app")
        event.source = EventSource(component: "iotkube-agent", host: "pi-kitchen")
        event.firstTimestamp = now
        event.lastTimestamp = now
        event.count = 1
        event.eventTime = MicroTimestamp(now)
        event.reportingComponent = "iotkube-agent"
        event.reportingInstance = "pi-kitchen"

        var csr = CertificateSigningRequest(
            metadata: ObjectMeta(name: "node-csr-pi-kitchen"),
            spec: CertificateSigningRequestSpec(
                request: Array("-----BEGIN CERTIFICATE REQUEST-----\n...\n".utf8),
                signerName: "kubernetes.io/kube-apiserver-client-kubelet",
                usages: ["digital signature", "client auth"]))
        var csrStatus = CertificateSigningRequestStatus()
        csrStatus.conditions = [CertificateSigningRequestCondition(type: "Approved", reason: "AutoApproved", message: "bootstrap token")]
        csrStatus.certificate = Base64Bytes("-----BEGIN CERTIFICATE-----\n...\n")
        csr.status = csrStatus

        var namespace = Namespace(name: "edge")
        namespace.status = NamespaceStatus(phase: "Active")
        let configMap = ConfigMap(metadata: ObjectMeta(name: "cfg", namespace: "default"), data: ["k": "v"])
        let secret = Secret(metadata: ObjectMeta(name: "s", namespace: "default"), data: ["token": Base64Bytes("secret")], type: "Opaque")

        return [
            ("pod", try KubeJSON.encode(pod)), ("node", try KubeJSON.encode(node)), ("lease", try KubeJSON.encode(lease)),
            ("event", try KubeJSON.encode(event)), ("csr", try KubeJSON.encode(csr)),
            ("namespace", try KubeJSON.encode(namespace)), ("configmap", try KubeJSON.encode(configMap)),
            ("secret", try KubeJSON.encode(secret)),
        ]
    }

    @Test(.enabled(if: available, "kubernetes-validate is not installed (pip install kubernetes-validate)"))
    func builtObjectsPassTheOfficialSchemas() throws {
        let failures = try SchemaValidator.failures(try Self.builtObjects())
        #expect(failures.isEmpty, "\(failures.joined(separator: "\n"))")
    }

    @Test(.enabled(if: available, "kubernetes-validate is not installed (pip install kubernetes-validate)"))
    func decodedFixturesPassTheOfficialSchemasAfterReencoding() throws {
        var documents: [(name: String, json: [UInt8])] = []
        for name in UnknownFieldsTests.fixtureNames {
            for tree in try Fixtures.trees(name) {
                documents.append((name, KubeJSON.serialize(try roundTripByKind(tree))))
            }
        }
        let failures = try SchemaValidator.failures(documents)
        #expect(failures.isEmpty, "\(failures.joined(separator: "\n"))")
    }

    /// The validator really rejects what the API rejects, so the tests above can fail.
    @Test(.enabled(if: available, "kubernetes-validate is not installed (pip install kubernetes-validate)"))
    func validatorRejectsAnIncompleteNode() throws {
        var node = Node(metadata: ObjectMeta(name: "n"))
        var status = NodeStatus()
        status.nodeInfo = NodeSystemInfo()
        node.status = status
        var tree = try KubeJSON.tree(node)
        guard case .object(var object) = tree, case .object(var statusObject)? = object["status"],
              case .object(var infoObject)? = statusObject["nodeInfo"] else {
            Issue.record("unexpected shape")
            return
        }
        infoObject["machineID"] = nil
        statusObject["nodeInfo"] = .object(infoObject)
        object["status"] = .object(statusObject)
        tree = .object(object)
        let failures = try SchemaValidator.failures([("broken-node", KubeJSON.serialize(tree))])
        #expect(failures.contains { $0.contains("machineID") })
    }
}
