/// Metadata of a list or status object (`metav1.ListMeta`).
public struct ListMeta: Codable, Sendable, Hashable {
    public var selfLink: String?
    public var resourceVersion: String?
    /// The token that fetches the next page of a chunked list (`continue` in JSON).
    public var continueToken: String?
    public var remainingItemCount: Int64?
    public var unknownFields = UnknownFields()

    public init(resourceVersion: String? = nil, continueToken: String? = nil) {
        self.resourceVersion = resourceVersion
        self.continueToken = continueToken
    }

    enum CodingKeys: String, CodingKey {
        case selfLink, resourceVersion, remainingItemCount, unknownFields
        case continueToken = "continue"
    }
}
