#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif
import KubeModel
import Runtime

/// Finds and executes CNI plugin binaries (CNI spec: environment `CNI_*`, configuration on
/// stdin, result or error JSON on stdout).
public struct CNIPlugins: Sendable {
    /// Searched in order (Debian's containernetworking-plugins installs into /usr/lib/cni).
    public var directories: [String]
    /// A plugin still running after this many seconds is killed and the operation fails.
    public var timeoutSeconds: Double

    public init(directories: [String] = ["/usr/lib/cni", "/opt/cni/bin"], timeoutSeconds: Double = 60) {
        self.directories = directories
        self.timeoutSeconds = timeoutSeconds
    }

    public struct Invocation: Sendable {
        public var command: String
        public var containerID: String
        public var networkNamespace: String
        public var interfaceName: String
        /// `CNI_ARGS` pairs (K8S_POD_NAMESPACE, K8S_POD_NAME, K8S_POD_UID, …).
        public var arguments: [(String, String)]
    }

    func path(of type: String) throws(NetworkError) -> String {
        for directory in directories where access(directory + "/" + type, X_OK) == 0 { return directory + "/" + type }
        throw NetworkError("CNI plugin \"\(type)\" not found in \(directories.joined(separator: ", ")) (install containernetworking-plugins)")
    }

    /// Runs plugin `type` with `input`; its parsed result (nil for DEL and CHECK, which print nothing).
    func run(_ type: String, _ invocation: Invocation, input: [UInt8], network: String) throws(NetworkError) -> JSONValue? {
        let executable = try path(of: type)
        let environment = [
            "CNI_COMMAND=\(invocation.command)", "CNI_CONTAINERID=\(invocation.containerID)", "CNI_NETNS=\(invocation.networkNamespace)",
            "CNI_IFNAME=\(invocation.interfaceName)", "CNI_PATH=\(directories.joined(separator: ":"))",
            "CNI_ARGS=\(invocation.arguments.map { "\($0.0)=\($0.1)" }.joined(separator: ";"))",
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        ]
        let what = "CNI plugin \(type) \(invocation.command) (network \(network), container \(invocation.containerID))"
        let outcome = try captured(executable, [], environment: environment, input: input, timeoutSeconds: timeoutSeconds)
        if outcome.timedOut { throw NetworkError("\(what): no answer within \(Int(timeoutSeconds)) s; killed") }
        guard outcome.status == 0 else {
            // The spec's error object: {"code": N, "msg": "...", "details": "..."}.
            if let error = try? KubeJSON.parse(outcome.output), let message = error["msg"]?.stringValue {
                let code = error["code"].map { value -> String in if case .number(let n) = value { return n } else { return "?" } } ?? "?"
                let details = error["details"]?.stringValue.map { $0.isEmpty ? "" : ": \($0)" } ?? ""
                throw NetworkError("\(what) failed (code \(code)): \(message)\(details)")
            }
            let text = (outcome.output.trimmedText + " " + outcome.errorOutput.trimmedText)
            throw NetworkError("\(what) failed with exit status \(outcome.status): \(String(text.prefix(500)))")
        }
        guard invocation.command == "ADD" else { return nil }
        do { return try KubeJSON.parse(outcome.output) } catch { throw NetworkError("\(what): unreadable result: \(error)") }
    }
}
