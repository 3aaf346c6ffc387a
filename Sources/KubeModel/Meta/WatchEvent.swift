/// The kind of change a watch event reports.
public enum WatchEventType: String, KubeEnum {
    case added = "ADDED"
    case modified = "MODIFIED"
    case deleted = "DELETED"
    case bookmark = "BOOKMARK"
    case error = "ERROR"
}

/// One line of a watch stream: a changed object, a bookmark, or an error ``Status``.
public struct WatchEvent<Object: Codable & Sendable & Hashable>: Codable, Sendable, Hashable {
    public var type: WatchEventType
    /// The object for ADDED, MODIFIED, DELETED and BOOKMARK.
    public var object: Object?
    /// The error for ERROR (for example 410 Gone when the resourceVersion is too old).
    public var status: Status?

    public init(type: WatchEventType, object: Object) {
        self.type = type
        self.object = object
    }

    public init(error: Status) {
        type = .error
        status = error
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        type = try container.decode(WatchEventType.self, forKey: .type)
        if type == .error {
            status = try container.decode(Status.self, forKey: .object)
        } else {
            object = try container.decode(Object.self, forKey: .object)
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(type, forKey: .type)
        if let status { try container.encode(status, forKey: .object) } else { try container.encodeIfPresent(object, forKey: .object) }
    }

    enum CodingKeys: String, CodingKey {
        case type, object
    }
}
