import ArgumentParser
import KubeModel
import SystemSupport

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// `iotkube-agent check-manifest FILE...`: decodes pod manifests (YAML or JSON) exactly as the
/// agent reads static pods, and reports each problem with its file, document and field path.
struct ManifestCheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-manifest",
        abstract: "Check pod manifests (YAML or JSON) the way the agent reads them.",
        discussion: "Exits 0 when every document of every file is a valid Pod, 1 otherwise."
    )

    @Flag(help: "Also reject fields this agent does not know (like fieldValidation=Strict).")
    var strict = false

    @Argument(help: "Manifest files.")
    var files: [String]

    func run() throws {
        var failed = false
        for file in files {
            do {
                let bytes = try ManifestFile.contents(of: file)
                let pods = try KubeYAML.decodeAll(Pod.self, from: bytes, validation: strict ? .strict : .preserve)
                for (position, pod) in pods.enumerated() {
                    guard pod.kind == Pod.kind else {
                        failed = true
                        print("\(file): document \(position + 1): kind is \(pod.kind ?? "missing"), expected Pod")
                        continue
                    }
                    let problems = PodValidation.problems(pod)
                    guard problems.isEmpty else {
                        failed = true
                        for problem in problems { print("\(file): pod \(pod.metadata.name ?? "(unnamed)"): \(problem.field ?? ""): \(problem.message ?? "")") }
                        continue
                    }
                    print("\(file): pod \(pod.metadata.name ?? "(unnamed)"): ok")
                }
            } catch {
                failed = true
                print("\(file): \(error)")
            }
        }
        if failed { throw ExitCode.failure }
    }
}

/// Reads a whole file with plain POSIX calls (no Foundation file APIs in the agent).
enum ManifestFile {
    struct ReadError: Error, CustomStringConvertible {
        var path: String
        var code: Int32
        var description: String { "cannot read: \(String(cString: strerror(code)))" }
    }

    /// Manifests larger than this are refused rather than read into memory.
    static let maximumSize = 4 << 20

    static func contents(of path: String) throws -> [UInt8] {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw ReadError(path: path, code: errno) }
        defer { close(descriptor) }
        do { return try SystemCall.readAll(descriptor, path: path, limit: maximumSize) } catch { throw ReadError(path: path, code: error.code) }
    }
}
