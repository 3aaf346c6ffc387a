import Foundation
import IotkubeTestSupport
import Testing

/// The built `iotkube-agent` binary, run as a user runs it.
@Suite(.ownThread)
struct ManifestCheckTests {
    static let binary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("iotkube-agent")
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("KubeModelTests/Fixtures")

    static func run(_ arguments: [String]) throws -> (status: Int32, output: String) {
        try ServerProcess.run(binary.path, arguments)
    }

    static func temporaryFile(_ content: String) throws -> String {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("manifest-\(UUID().uuidString).yaml")
        try content.write(to: url, atomically: true, encoding: .utf8)
        return url.path
    }

    @Test func acceptsTheFixtureManifests() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.fixtures.path)
            .filter { $0.hasPrefix("pod-") }.sorted().map { Self.fixtures.appendingPathComponent($0).path }
        #expect(files.count >= 12)
        let result = try Self.run(["check-manifest", "--strict"] + files)
        #expect(result.status == 0, "\(result.output)")
        #expect(result.output.split(separator: "\n").filter { $0.hasSuffix(": ok") }.count == files.count)
    }

    @Test func rulesOfTheAPIServerAreChecked() throws {
        let file = try Self.temporaryFile("""
            apiVersion: v1
            kind: Pod
            metadata: {name: probes}
            spec:
              containers:
              - name: app
                image: busybox
                livenessProbe: {httpGet: {port: 70000}}
                readinessProbe: {periodSeconds: 2}
            """)
        defer { try? FileManager.default.removeItem(atPath: file) }
        let result = try Self.run(["check-manifest", file])
        #expect(result.status == 1)
        #expect(result.output.contains("spec.containers[0].livenessProbe.httpGet.port: Invalid value: 70000: must be between 1 and 65535"), "\(result.output)")
        #expect(result.output.contains("spec.containers[0].readinessProbe: Required value: must specify a handler type"), "\(result.output)")
    }

    @Test func reportsFileDocumentAndFieldPath() throws {
        let file = try Self.temporaryFile("""
            apiVersion: v1
            kind: Pod
            metadata: {name: good}
            spec: {containers: [{name: a, image: busybox}]}
            ---
            apiVersion: v1
            kind: Pod
            metadata: {name: bad}
            spec:
              containers:
                - name: a
                - name: b
                  resources: {limits: {memory: 12Qi}}
            """)
        defer { try? FileManager.default.removeItem(atPath: file) }
        let result = try Self.run(["check-manifest", file])
        #expect(result.status == 1)
        #expect(result.output.contains("\(file): document 2: spec.containers[1].resources.limits.memory: \"12Qi\" is not a quantity"))
    }

    @Test func refusesWhatIsNotAPodOrNotReadable() throws {
        let configMap = try Self.temporaryFile("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n")
        defer { try? FileManager.default.removeItem(atPath: configMap) }
        let result = try Self.run(["check-manifest", configMap, "/nonexistent/pod.yaml"])
        #expect(result.status == 1)
        #expect(result.output.contains("\(configMap): document 1: kind is ConfigMap, expected Pod"))
        #expect(result.output.contains("/nonexistent/pod.yaml: cannot read: No such file or directory"))
    }

    @Test func strictModeNamesUnknownFields() throws {
        let file = try Self.temporaryFile("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: a, image: busybox, imagePullPolicyy: Always}]}\n")
        defer { try? FileManager.default.removeItem(atPath: file) }
        #expect(try Self.run(["check-manifest", file]).status == 0)
        let strict = try Self.run(["check-manifest", "--strict", file])
        #expect(strict.status == 1)
        #expect(strict.output.contains(#"unknown field "spec.containers[0].imagePullPolicyy""#))
    }
}
