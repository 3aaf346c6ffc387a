import Runtime

/// Why a pod network operation failed; the message names the pod, plugin, file or address.
public struct NetworkError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// `CapturedProcess.run` with its errors as network errors.
func captured(
    _ executable: String, _ arguments: [String], environment: [String]? = nil, input: [UInt8] = [], timeoutSeconds: Double
) throws(NetworkError) -> CapturedProcess.Outcome {
    do { return try CapturedProcess.run(executable, arguments, environment: environment, input: input, timeoutSeconds: timeoutSeconds) } catch {
        throw NetworkError(error.description)
    }
}
