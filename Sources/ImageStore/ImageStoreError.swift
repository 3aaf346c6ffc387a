/// Why an image operation failed. The message names the image, blob or layer entry and what was
/// wrong with it; nothing half-done is left where the store would use it.
public struct ImageStoreError: Error, CustomStringConvertible, Sendable {
    public enum Kind: Sendable {
        /// A reference, manifest, config or layer that is malformed or hostile.
        case invalidContent
        /// The registry refused, failed or could not be reached.
        case registry
        /// Authentication was required and failed.
        case unauthorized
        /// The image or tag does not exist (or not for this platform).
        case notFound
        /// A local file operation failed (disk full, permissions).
        case storage
        /// The operation would remove something still in use.
        case inUse
    }

    public var kind: Kind
    public var description: String
    /// The registry answered a TLS handshake with something else (a plain-HTTP registry).
    public var speaksNoTLS = false

    public init(_ kind: Kind, _ description: String) {
        self.kind = kind
        self.description = description
    }
}
