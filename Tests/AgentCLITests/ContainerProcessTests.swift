import IotkubeTestSupport
import Agent
import KubeModel
import OCI
import Testing

/// Command lines and environments as the kubelet and a CRI runtime compute them.
@Suite(.ownThread) struct ContainerProcessTests {
    static let image = ImageConfiguration.ExecutionConfiguration(
        entrypoint: ["/entrypoint.sh"], cmd: ["serve", "--port=80"], env: ["PATH=/usr/local/bin:/usr/bin:/bin", "MODE=image", "EMPTY"], workingDir: "/srv")

    static func pod(_ container: Container) -> Pod {
        var spec = PodSpec(containers: [container])
        spec.nodeName = "pi-kitchen"
        spec.serviceAccountName = "sensor"
        var metadata = ObjectMeta(name: "reader", namespace: "edge", labels: ["app": "reader"], annotations: ["note": "hi"])
        metadata.uid = "6f1c"
        return Pod(metadata: metadata, spec: spec)
    }

    static let context = ContainerProcess.Context(
        configMap: { $0 == "settings" ? ["LEVEL": "debug", "bad=key": "x", "2FA": "on"] : nil },
        secret: { $0 == "token" ? ["TOKEN": "s3cret"] : nil },
        podIPs: ["10.42.1.7"], hostIPs: ["192.168.1.20"], nodeAllocatable: ["cpu": Quantity(4), "memory": .bytes(1 << 30)])

    static func env(_ variables: [(String, String?, EnvVarSource?)]) -> [EnvVar] {
        variables.map { EnvVar(name: $0.0, value: $0.1, valueFrom: $0.2) }
    }

    @Test func commandAndArgsAgainstTheImage() throws {
        var container = Container(name: "app")
        func args(_ command: [String]?, _ arguments: [String]?) throws -> [String] {
            container.command = command
            container.args = arguments
            return try ContainerProcess.resolve(container, of: Self.pod(container), image: Self.image, context: Self.context).args
        }
        #expect(try args(nil, nil) == ["/entrypoint.sh", "serve", "--port=80"])
        #expect(try args(nil, ["debug"]) == ["/entrypoint.sh", "debug"])
        #expect(try args(["/bin/sh", "-c"], nil) == ["/bin/sh", "-c"])
        #expect(try args(["/bin/sh"], ["-c", "echo"]) == ["/bin/sh", "-c", "echo"])
        // Without an image configuration the pod's command is all there is.
        #expect(try ContainerProcess.resolve(container, of: Self.pod(container), image: nil, context: Self.context).args == ["/bin/sh", "-c", "echo"])
        #expect(try ContainerProcess.resolve(container, of: Self.pod(container), image: nil, context: Self.context).workingDirectory == "/")
        container.command = nil
        container.args = nil
        #expect {
            _ = try ContainerProcess.resolve(container, of: Self.pod(container), image: ImageConfiguration.ExecutionConfiguration(), context: Self.context)
        } throws: { "\($0)" == "container app: no command: the pod gives none and the image has no Entrypoint or Cmd" }
    }

    @Test func environmentSourcesOrderAndExpansion() throws {
        var container = Container(name: "app")
        container.command = ["/bin/app", "--level=$(LEVEL)", "--pod=$(POD_NAME)", "$$(LEVEL)", "$(UNDEFINED)"]
        container.envFrom = [EnvFromSource(configMapRef: EnvSourceReference(name: "settings")), EnvFromSource(prefix: "APP_", secretRef: EnvSourceReference(name: "token"))]
        func field(_ path: String) -> EnvVarSource { var source = EnvVarSource(); source.fieldRef = ObjectFieldSelector(fieldPath: path); return source }
        func resource(_ name: String, _ divisor: Quantity? = nil) -> EnvVarSource {
            var source = EnvVarSource(); source.resourceFieldRef = ResourceFieldSelector(resource: name, divisor: divisor); return source
        }
        var optionalKey = EnvVarSource()
        optionalKey.configMapKeyRef = KeySelector(name: "settings", key: "MISSING", optional: true)
        container.resources = ResourceRequirements(limits: ["cpu": try Quantity(parsing: "250m"), "memory": try Quantity(parsing: "64Mi")])
        container.env = Self.env([
            ("POD_NAME", nil, field("metadata.name")), ("NAMESPACE", nil, field("metadata.namespace")), ("UID", nil, field("metadata.uid")),
            ("APP", nil, field("metadata.labels['app']")), ("NOTE", nil, field("metadata.annotations['note']")), ("NODE", nil, field("spec.nodeName")),
            ("SA", nil, field("spec.serviceAccountName")), ("POD_IP", nil, field("status.podIP")), ("HOST_IP", nil, field("status.hostIP")),
            ("CPU", nil, resource("limits.cpu")), ("CPU_M", nil, resource("limits.cpu", try Quantity(parsing: "1m"))),
            ("MEM_MI", nil, resource("limits.memory", try Quantity(parsing: "1Mi"))), ("NODE_MEM", nil, resource("requests.memory")),
            ("URL", "http://$(POD_IP):8080/$(LEVEL)/$(LATER)", nil), ("LATER", "x", nil), ("MODE", "pod", nil), ("OPTIONAL", nil, optionalKey),
        ])
        let process = try ContainerProcess.resolve(container, of: Self.pod(container), image: Self.image, context: Self.context)
        let env = Dictionary(process.env.map { let parts = $0.split(separator: "=", maxSplits: 1); return (String(parts[0]), parts.count > 1 ? String(parts[1]) : "") }, uniquingKeysWith: { $1 })
        #expect(process.env.prefix(3) == ["PATH=/usr/local/bin:/usr/bin:/bin", "MODE=pod", "EMPTY="], "image variables first, replaced in place")
        #expect(env["LEVEL"] == "debug" && env["2FA"] == "on" && env["APP_TOKEN"] == "s3cret")
        #expect(env["POD_NAME"] == "reader" && env["NAMESPACE"] == "edge" && env["UID"] == "6f1c" && env["APP"] == "reader" && env["NOTE"] == "hi")
        #expect(env["NODE"] == "pi-kitchen" && env["SA"] == "sensor" && env["POD_IP"] == "10.42.1.7" && env["HOST_IP"] == "192.168.1.20")
        #expect(env["CPU"] == "1" && env["CPU_M"] == "250" && env["MEM_MI"] == "64" && env["NODE_MEM"] == "0")
        #expect(env["URL"] == "http://10.42.1.7:8080/debug/$(LATER)", "only earlier variables expand")
        #expect(env["OPTIONAL"] == nil)
        #expect(process.args == ["/bin/app", "--level=debug", "--pod=reader", "$(LEVEL)", "$(UNDEFINED)"])
        #expect(process.workingDirectory == "/srv")
        #expect(process.warnings == ["container app: keys [bad=key] from the EnvFrom ConfigMap edge/settings were skipped since they are invalid environment variable names"])
    }

    @Test(arguments: [
        ("missing map", "container app: env X: ConfigMap \"nope\" not found"),
        ("missing key", "container app: env X: couldn't find key NOPE in ConfigMap edge/settings"),
        ("bad field", "container app: env X: fieldRef \"spec.hostname\" is not supported"),
        ("bad resource", "container app: env X: resourceFieldRef \"limits.gpu\" is not supported"),
        ("missing envFrom", "container app: envFrom: Secret \"nope\" not found"),
        ("relative dir", "container app: workingDir \"data\" is not an absolute path"),
    ])
    func problemsNameTheContainerAndVariable(_ problem: String, _ message: String) throws {
        var container = Container(name: "app")
        var source = EnvVarSource()
        switch problem {
        case "missing map": source.configMapKeyRef = KeySelector(name: "nope", key: "K")
        case "missing key": source.configMapKeyRef = KeySelector(name: "settings", key: "NOPE")
        case "bad field": source.fieldRef = ObjectFieldSelector(fieldPath: "spec.hostname")
        case "bad resource": source.resourceFieldRef = ResourceFieldSelector(resource: "limits.gpu")
        case "missing envFrom": container.envFrom = [EnvFromSource(secretRef: EnvSourceReference(name: "nope"))]
        default: container.workingDir = "data"
        }
        if source != EnvVarSource() { container.env = Self.env([("X", nil, source)]) }
        #expect {
            _ = try ContainerProcess.resolve(container, of: Self.pod(container), image: Self.image, context: Self.context)
        } throws: { "\($0)" == message }
    }
}
