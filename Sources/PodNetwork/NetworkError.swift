/// Why a pod network operation failed; the message names the pod, plugin, file or address.
public struct NetworkError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}
