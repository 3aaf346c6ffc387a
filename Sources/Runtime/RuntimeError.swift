/// Why a runtime operation failed; the message names the container, the bundle field or the
/// step of the setup that went wrong.
public struct RuntimeError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}
