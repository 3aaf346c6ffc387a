import Foundation
import IotkubeTestSupport
import Testing

@testable import KubeModel

/// Fixture files and helpers shared by the KubeModel tests.
enum Fixtures {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

    static func bytes(_ name: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: directory.appendingPathComponent(name)))
    }

    /// Every fixture as parsed trees (YAML streams may hold several documents).
    static func trees(_ name: String) throws -> [JSONValue] {
        let content = try bytes(name)
        return name.hasSuffix(".json") ? [try KubeJSON.parse(content)] : try KubeYAML.documents(content)
    }

    static var podFixtures: [String] {
        (try? FileManager.default.contentsOfDirectory(atPath: directory.path))?.filter { $0.hasPrefix("pod-") }.sorted() ?? []
    }
}

/// Decodes a tree as the kind it declares and encodes it back, through the typed model.
func roundTripByKind(_ tree: JSONValue, validation: FieldValidation = .preserve) throws -> JSONValue {
    switch tree["kind"]?.stringValue {
    case "Pod": return try KubeJSON.tree(KubeJSON.decode(Pod.self, from: tree, validation: validation))
    case "Node": return try KubeJSON.tree(KubeJSON.decode(Node.self, from: tree, validation: validation))
    case "Lease": return try KubeJSON.tree(KubeJSON.decode(Lease.self, from: tree, validation: validation))
    case "Event": return try KubeJSON.tree(KubeJSON.decode(Event.self, from: tree, validation: validation))
    case "CertificateSigningRequest":
        return try KubeJSON.tree(KubeJSON.decode(CertificateSigningRequest.self, from: tree, validation: validation))
    case "ConfigMap": return try KubeJSON.tree(KubeJSON.decode(ConfigMap.self, from: tree, validation: validation))
    case "Secret": return try KubeJSON.tree(KubeJSON.decode(Secret.self, from: tree, validation: validation))
    case "Namespace": return try KubeJSON.tree(KubeJSON.decode(Namespace.self, from: tree, validation: validation))
    default: throw KubeDecodingError(kind: .invalidValue, path: "kind", message: "no test mapping")
    }
}

/// Runs the official Kubernetes JSON schemas (PyPI kubernetes-validate, strict) over objects.
enum SchemaValidator {
    static let kubernetesVersion = "1.30.0"

    /// The validator's path, or nil when it is not installed.
    static var executable: String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for directory in path.split(separator: ":") {
            let candidate = "\(directory)/kubernetes-validate"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    /// Whether a missing validator fails the run (CI installs it) instead of skipping.
    static var required: Bool { ProcessInfo.processInfo.environment["CI"] != nil }

    /// Validates each named JSON document; returns the validator's failure lines (empty when all pass).
    static func failures(_ documents: [(name: String, json: [UInt8])]) throws -> [String] {
        guard let executable else { return ["kubernetes-validate is not installed"] }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("schema-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        var paths: [String] = []
        for (position, document) in documents.enumerated() {
            let file = directory.appendingPathComponent("\(position)-\(document.name).json")
            try Data(document.json).write(to: file)
            paths.append(file.path)
        }
        // The validator starts a cold Python and loads every schema: minutes on a loaded machine.
        let (status, text) = try ServerProcess.run(executable, ["-k", kubernetesVersion, "--strict"] + paths, timeout: 600)
        let lines = text.split(separator: "\n").map(String.init)
        let passed = lines.filter { $0.hasPrefix("INFO") && $0.contains(" passed ") }.count
        var failures = lines.filter { !($0.hasPrefix("INFO") && $0.contains(" passed ")) && !$0.isEmpty }
        if status != 0 && failures.isEmpty { failures.append("validator exited \(status)") }
        if passed != documents.count && failures.isEmpty { failures.append("only \(passed) of \(documents.count) documents passed") }
        return failures
    }
}
