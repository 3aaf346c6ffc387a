import Foundation
import IotkubeTestSupport
import Testing

/// Random and extreme values for every numeric field of Pod, Node, Lease and CSR, sent through
/// every write path of a real server (create, update, merge/strategic/JSON patch, delete
/// options) and through the agent's manifest reader: every answer is a 2xx or 4xx, the server
/// stays up, and `check-manifest` exits 0 or 1. Replay a failure with `IOTKUBE_FUZZ_SEED=<seed>`.
@Suite(.ownThread, .heavy, .serialized)
struct APIFuzzTests {
    /// A numeric field: its dotted path, the object around it (`@V` the value, `@N` the name) and a valid value.
    struct Field {
        var path: String
        var collection: String
        var template: String
        var valid: String

        var isStatus: Bool { path.hasPrefix("status.") }
        var pointer: String {
            "/" + path.replacingOccurrences(of: "[", with: ".").replacingOccurrences(of: "]", with: "").split(separator: ".").joined(separator: "/")
        }
        func object(name: String, value: String) -> String {
            template.replacingOccurrences(of: "@N", with: name).replacingOccurrences(of: "@V", with: value)
        }
    }

    static let pods = "/api/v1/namespaces/default/pods"

    /// Pods are bound to a node that does not exist (the scheduler passes over them, which keeps
    /// the run short), except those whose field the scheduler sums.
    static func podField(_ path: String, spec: String = "", container: String = "", valid: String) -> Field {
        let scheduled = path.contains("resources") || path.contains("overhead") || spec.contains("nodeName")
        let template = #"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"@N"},"spec":{"#
            + (scheduled ? "" : #""nodeName":"elsewhere","#) + #""containers":[{"name":"c","image":"busybox""#
            + (container.isEmpty ? "" : ",\(container)") + "}]" + (spec.isEmpty ? "" : ",\(spec)") + "}}"
        return Field(path: path, collection: pods, template: template, valid: valid)
    }

    static let fields: [Field] = {
        let probe = { (name: String) in podField("spec.containers[0].livenessProbe.\(name)", container: #""livenessProbe":{"exec":{"command":["true"]},"\#(name)":@V}"#, valid: "5") }
        let node = { (path: String, body: String, valid: String) in
            Field(path: path, collection: "/api/v1/nodes", template: #"{"apiVersion":"v1","kind":"Node","metadata":{"name":"@N"},\#(body)}"#, valid: valid)
        }
        let lease = { (name: String) in
            Field(path: "spec.\(name)", collection: "/apis/coordination.k8s.io/v1/namespaces/default/leases",
                  template: #"{"apiVersion":"coordination.k8s.io/v1","kind":"Lease","metadata":{"name":"@N"},"spec":{"holderIdentity":"n","\#(name)":@V}}"#, valid: "40")
        }
        return [
            podField("spec.terminationGracePeriodSeconds", spec: #""terminationGracePeriodSeconds":@V"#, valid: "30"),
            podField("spec.activeDeadlineSeconds", spec: #""activeDeadlineSeconds":@V"#, valid: "60"),
            podField("spec.priority", spec: #""priority":@V"#, valid: "0"),
            podField("spec.securityContext.runAsUser", spec: #""securityContext":{"runAsUser":@V}"#, valid: "1000"),
            podField("spec.securityContext.runAsGroup", spec: #""securityContext":{"runAsGroup":@V}"#, valid: "1000"),
            podField("spec.securityContext.fsGroup", spec: #""securityContext":{"fsGroup":@V}"#, valid: "1000"),
            podField("spec.securityContext.supplementalGroups[0]", spec: #""securityContext":{"supplementalGroups":[@V]}"#, valid: "5"),
            podField("spec.tolerations[0].tolerationSeconds", spec: #""tolerations":[{"key":"k","operator":"Exists","effect":"NoExecute","tolerationSeconds":@V}]"#, valid: "10"),
            podField("spec.overhead.cpu", spec: #""overhead":{"cpu":@V}"#, valid: #""1""#),
            podField("spec.containers[0].ports[0].containerPort", container: #""ports":[{"containerPort":@V}]"#, valid: "80"),
            podField("spec.containers[0].ports[0].hostPort", container: #""ports":[{"containerPort":80,"hostPort":@V}]"#, valid: "8080"),
            probe("initialDelaySeconds"), probe("timeoutSeconds"), probe("periodSeconds"), probe("successThreshold"),
            probe("failureThreshold"), probe("terminationGracePeriodSeconds"),
            podField("spec.containers[0].livenessProbe.httpGet.port", container: #""livenessProbe":{"httpGet":{"port":@V}}"#, valid: "80"),
            podField("spec.containers[0].lifecycle.preStop.sleep.seconds", container: #""lifecycle":{"preStop":{"sleep":{"seconds":@V}}}"#, valid: "1"),
            podField("spec.containers[0].securityContext.runAsUser", container: #""securityContext":{"runAsUser":@V}"#, valid: "1000"),
            podField("spec.containers[0].resources.requests.cpu", container: #""resources":{"requests":{"cpu":@V}}"#, valid: #""100m""#),
            podField("spec.containers[0].resources.requests.memory", container: #""resources":{"requests":{"memory":@V}}"#, valid: #""64Mi""#),
            podField("spec.containers[0].resources.limits.cpu", container: #""resources":{"limits":{"cpu":@V}}"#, valid: #""1""#),
            podField("spec.containers[0].env[0].valueFrom.resourceFieldRef.divisor", container: #""env":[{"name":"X","valueFrom":{"resourceFieldRef":{"resource":"limits.memory","divisor":@V}}}]"#, valid: #""1Mi""#),
            podField("spec.volumes[0].emptyDir.sizeLimit", spec: #""volumes":[{"name":"v","emptyDir":{"sizeLimit":@V}}]"#, valid: #""1Gi""#),
            podField("spec.volumes[0].configMap.defaultMode", spec: #""volumes":[{"name":"v","configMap":{"name":"x","defaultMode":@V}}]"#, valid: "420"),
            podField("spec.volumes[0].secret.items[0].mode", spec: #""volumes":[{"name":"v","secret":{"secretName":"x","items":[{"key":"k","path":"p","mode":@V}]}}]"#, valid: "256"),
            podField("spec.volumes[0].projected.sources[0].serviceAccountToken.expirationSeconds",
                     spec: #""volumes":[{"name":"v","projected":{"sources":[{"serviceAccountToken":{"path":"t","expirationSeconds":@V}}]}}]"#, valid: "3600"),
            node("status.capacity.cpu", #""status":{"capacity":{"cpu":@V}}"#, #""4""#),
            node("status.allocatable.memory", #""status":{"allocatable":{"memory":@V}}"#, #""1Gi""#),
            node("status.allocatable.pods", #""status":{"allocatable":{"pods":@V}}"#, #""110""#),
            node("status.daemonEndpoints.kubeletEndpoint.Port", #""status":{"daemonEndpoints":{"kubeletEndpoint":{"Port":@V}}}"#, "10250"),
            node("status.images[0].sizeBytes", #""status":{"images":[{"names":["x"],"sizeBytes":@V}]}"#, "1"),
            lease("leaseDurationSeconds"), lease("leaseTransitions"),
            Field(path: "spec.expirationSeconds", collection: "/apis/certificates.k8s.io/v1/certificatesigningrequests",
                  template: #"{"apiVersion":"certificates.k8s.io/v1","kind":"CertificateSigningRequest","metadata":{"name":"@N"},"spec":{"request":"","signerName":"example.com/fuzz","usages":["client auth"],"expirationSeconds":@V}}"#,
                  valid: "3600"),
        ]
    }()

    /// The values every field gets, as JSON text.
    static let extremes: [String] = [
        "0", "-1", "1", "65535", "65536", "511", "512", "2147483647", "2147483648", "-2147483649",
        "9223372036854775807", "-9223372036854775808", "9223372036854775808", "18446744073709551616",
        "1e308", "-1e308", "1e400", "1.5", "0.0", "-0", "null", "true", "[]", "{}",
        #""9223372036854775807""#, #""-9223372036854775808""#, #""9999999999999999999Ei""#, #""1e308""#, #""1E1000000""#,
        #""170141183460469231731687303715884105727""#, #""0.0000000001m""#, #""-1""#, #""8Ei""#, #""abc""#, #""""#,
        String(repeating: "[", count: 300) + String(repeating: "]", count: 300),
        String(repeating: #"{"a":"#, count: 200) + "1" + String(repeating: "}", count: 200),
    ]

    /// A few random values per field from the seeded generator.
    static func randomValues(_ generator: inout SeededGenerator) -> [String] {
        let integer = Int64.random(in: .min ... .max, using: &generator)
        let small = Int64.random(in: -100_000...100_000, using: &generator)
        let digits = String((0..<Int.random(in: 1...60, using: &generator)).map { _ in "0123456789".randomElement(using: &generator)! })
        let suffix = ["", "m", "k", "M", "G", "T", "P", "E", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "e9", "e-9", "e99"].randomElement(using: &generator)!
        let double = Double(bitPattern: UInt64.random(in: 0 ... .max, using: &generator))
        return ["\(integer)", "\(small)", digits, #""\#(digits)\#(suffix)""#, #""-\#(digits)\#(suffix)""#, double.isFinite ? "\(double)" : "1e300"]
    }

    enum Operation: CaseIterable { case update, mergePatch, strategicPatch, jsonPatch }

    @Test(.enabled(if: toolAvailable("curl"), "curl is not installed"))
    func extremeNumbersNeverStopTheServerOrTheManifestReader() async throws {
        let seed = ProcessInfo.processInfo.environment["IOTKUBE_FUZZ_SEED"].flatMap { UInt64($0) } ?? UInt64.random(in: 0 ... .max)
        print("API fuzz seed: \(seed) (replay with IOTKUBE_FUZZ_SEED=\(seed))")
        var generator = SeededGenerator(seed: seed)
        let server = try ServerProcess()
        let client = try FuzzClient(server)
        let started = Date()
        try await client.expectNoServerErrors([.init("POST", "/api/v1/nodes", body: #"{"apiVersion":"v1","kind":"Node","metadata":{"name":"n1"}}"#, label: "node")], seed: seed)

        var batch: [FuzzClient.Request] = []
        for (index, field) in Self.fields.enumerated() {
            let base = "base-\(index)"
            batch.append(.init("POST", field.collection, body: field.object(name: base, value: field.valid), label: "\(field.path) base"))
        }
        try await client.expectNoServerErrors(batch, seed: seed)

        var manifests: [(field: String, files: [String])] = []
        for (index, field) in Self.fields.enumerated() {
            batch = []
            let base = "base-\(index)"
            let values = Self.extremes + Self.randomValues(&generator)
            var files: [String] = []
            for (valueIndex, value) in values.enumerated() {
                let label = "\(field.path)=\(value.prefix(40))"
                batch.append(.init("POST", field.collection, body: field.object(name: "f\(index)-\(valueIndex)", value: value), label: "create \(label)"))
                let target = "\(field.collection)/\(base)\(field.isStatus ? "/status" : "")"
                for operation in Operation.allCases.shuffled(using: &generator).prefix(2) {
                    switch operation {
                    case .update:
                        batch.append(.init("PUT", target, body: field.object(name: base, value: value), label: "update \(label)"))
                    case .mergePatch:
                        batch.append(.init("PATCH", target, body: field.object(name: base, value: value), contentType: "application/merge-patch+json", label: "merge patch \(label)"))
                    case .strategicPatch:
                        batch.append(.init("PATCH", target, body: field.object(name: base, value: value), contentType: "application/strategic-merge-patch+json", label: "strategic patch \(label)"))
                    case .jsonPatch:
                        let patch = #"[{"op":"replace","path":"\#(field.pointer)","value":\#(value)}]"#
                        batch.append(.init("PATCH", target, body: patch, contentType: "application/json-patch+json", label: "JSON patch \(label)"))
                    }
                }
                if field.collection == Self.pods {
                    files.append(try client.writeBody(field.object(name: "m\(valueIndex)", value: value)))
                }
            }
            let batchStarted = Date()
            try await client.expectNoServerErrors(batch, seed: seed)
            print("API fuzz: \(field.path): \(batch.count) requests in \(Int(Date().timeIntervalSince(batchStarted) * 1000)) ms")
            if !files.isEmpty { manifests.append((field.path, files)) }
        }

        // Delete options: bound pods deleted with every grace period, in the query and in the body.
        batch = []
        for (index, value) in (Self.extremes + Self.randomValues(&generator)).enumerated() {
            let pod = Self.podField("", spec: #""nodeName":"n1""#, valid: "").object(name: "d\(index)", value: "")
            batch.append(.init("POST", Self.pods, body: pod, label: "bound pod"))
            let query = value.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""
            batch.append(.init("DELETE", "\(Self.pods)/d\(index)?gracePeriodSeconds=\(query)", label: "delete ?gracePeriodSeconds=\(value.prefix(40))"))
            batch.append(.init("DELETE", "\(Self.pods)/d\(index)", body: #"{"gracePeriodSeconds":\#(value)}"#, label: "delete {gracePeriodSeconds:\(value.prefix(40))}"))
        }
        try await client.expectNoServerErrors(batch, seed: seed)
        print("API fuzz: \(client.sent) requests in \(Int(Date().timeIntervalSince(started))) s")

        let agent = ServerProcess.buildDirectory.appendingPathComponent("iotkube-agent").path
        #expect(FileManager.default.isExecutableFile(atPath: agent), "build iotkube-agent first (swift build)")
        for (field, files) in manifests {
            let result = try await ServerProcess.runAsync(agent, ["check-manifest"] + files)
            #expect(result.status == 0 || result.status == 1, "seed \(seed): check-manifest \(field) exited \(result.status): \(result.output.suffix(800))")
        }
        #expect(server.process.isRunning, "seed \(seed): \(server.serverLog.suffix(2000))")
    }
}

/// Sends batches of requests with one curl process per batch (one kept-alive TLS connection).
final class FuzzClient {
    struct Request {
        var method: String
        var path: String
        var body: String?
        var contentType: String
        var label: String
        init(_ method: String, _ path: String, body: String? = nil, contentType: String = "application/json", label: String) {
            self.method = method
            self.path = path
            self.body = body
            self.contentType = contentType
            self.label = label
        }
    }

    let server: ServerProcess
    let credentials: [String]
    let directory: URL
    private(set) var sent = 0

    init(_ server: ServerProcess) throws {
        self.server = server
        credentials = try RobustnessTests.adminCredentials(server)
        directory = server.directory.appendingPathComponent("fuzz")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    func writeBody(_ text: String) throws -> String {
        let file = directory.appendingPathComponent(UUID().uuidString + ".json")
        try text.write(to: file, atomically: false, encoding: .utf8)
        return file.path
    }

    /// Sends the batch; every answer must be 2xx–4xx and the server must still run. curl runs
    /// on a thread of its own: a minute of waiting must not hold a Swift concurrency thread
    /// (two on CI) that other suites' async code needs.
    func expectNoServerErrors(_ requests: [Request], seed: UInt64) async throws {
        let ca = server.directory.appendingPathComponent("pki/ca.crt").path
        var config = ""
        for (index, request) in requests.enumerated() {
            if index > 0 { config += "next\n" }
            config += "silent\nshow-error\ncacert = \"\(ca)\"\ncert = \"\(credentials[1])\"\nkey = \"\(credentials[3])\"\n"
            config += "request = \"\(request.method)\"\nheader = \"Content-Type: \(request.contentType)\"\noutput = \"/dev/null\"\nwrite-out = \"%{http_code}\\n\"\n"
            config += "url = \"https://127.0.0.1:\(server.port)\(request.path)\"\n"
            if let body = request.body { config += "data-binary = \"@\(try writeBody(body))\"\n" }
        }
        let configFile = try writeBody(config)
        let curl = try #require(ServerProcess.findExecutable("curl"))
        let output = try await ServerProcess.runAsync(curl, ["-K", configFile], timeout: 120).output
        let codes = output.split(separator: "\n").compactMap { Int($0) }
        sent += requests.count
        for (request, code) in zip(requests, codes) where !(200..<500).contains(code) {
            Issue.record("seed \(seed): \(request.label) (\(request.method) \(request.path)) answered \(code)")
        }
        #expect(codes.count == requests.count, "seed \(seed): \(codes.count) answers to \(requests.count) requests: \(output.suffix(500))")
        #expect(server.process.isRunning, "seed \(seed): the server stopped: \(server.serverLog.suffix(2000))")
        if !server.process.isRunning { throw TestFailure("the server stopped (seed \(seed))") }
    }
}

