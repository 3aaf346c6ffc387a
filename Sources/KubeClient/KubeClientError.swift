import KubeModel

/// Why a request to the API server failed.
public enum KubeClientError: Error, Sendable, CustomStringConvertible {
    /// The configuration (kubeconfig, certificates, server URL) is unusable.
    case configuration(String)
    /// The server could not be reached or the connection broke (retry with backoff).
    case transport(String)
    /// The server answered with an error `Status` (404, 409, 410, 422, …).
    case status(Status)
    /// The server answered with something that is not what the API promises.
    case protocolViolation(String)

    public var description: String {
        switch self {
        case .configuration(let message): return "configuration: \(message)"
        case .transport(let message): return "cannot reach the API server: \(message)"
        case .status(let status): return "API error \(status.code.map(String.init) ?? "?") \(status.reason ?? ""): \(status.message ?? "")"
        case .protocolViolation(let message): return "unexpected response: \(message)"
        }
    }

    /// The HTTP code of a `Status` error.
    public var statusCode: Int? {
        if case .status(let status) = self { return status.code.map(Int.init) }
        return nil
    }
}
