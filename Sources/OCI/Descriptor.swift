/// A content descriptor (OCI image spec): what a blob is, its digest and its exact size.
public struct Descriptor: Codable, Sendable, Hashable {
    public var mediaType: String
    public var digest: Digest
    public var size: Int64
    public var urls: [String]?
    public var annotations: [String: String]?
    /// Set on the entries of an image index.
    public var platform: Platform?

    public init(mediaType: String, digest: Digest, size: Int64, platform: Platform? = nil) {
        self.mediaType = mediaType
        self.digest = digest
        self.size = size
        self.platform = platform
    }
}
