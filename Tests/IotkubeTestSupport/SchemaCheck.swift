import Foundation

/// Runs the official Kubernetes schemas (kubernetes-validate, strict) over JSON documents.
public enum SchemaCheck {
    /// `version`: the Kubernetes release whose schemas apply (1.30 unless a newer field is meant).
    public static func failures(_ documents: [(name: String, json: [UInt8])], version: String = "1.30.0") throws -> [String] {
        guard let executable = ServerProcess.findExecutable("kubernetes-validate") else { return ["kubernetes-validate is not installed"] }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("schema-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        var paths: [String] = []
        for (index, document) in documents.enumerated() {
            let file = directory.appendingPathComponent("\(index)-\(document.name).json")
            try Data(document.json).write(to: file)
            paths.append(file.path)
        }
        let result = try ServerProcess.run(executable, ["-k", version, "--strict"] + paths)
        let failures = result.output.split(separator: "\n").map(String.init).filter { !$0.isEmpty && !($0.hasPrefix("INFO") && $0.contains(" passed ")) }
        return result.status == 0 && failures.isEmpty ? [] : (failures.isEmpty ? ["exit \(result.status)"] : failures)
    }
}
