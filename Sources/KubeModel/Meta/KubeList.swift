/// A list of objects of one kind (`PodList`, `NodeList`, …) with its list metadata.
public struct KubeList<Item: KubeObject>: Codable, Sendable, Hashable {
    public var apiVersion: String? = Item.apiVersion
    public var kind: String? = Item.kind + "List"
    public var metadata = ListMeta()
    public var items: [Item] = []
    public var unknownFields = UnknownFields()

    public init(items: [Item] = [], metadata: ListMeta = ListMeta()) {
        self.items = items
        self.metadata = metadata
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        apiVersion = try container.decodeIfPresent(String.self, forKey: .apiVersion)
        kind = try container.decodeIfPresent(String.self, forKey: .kind)
        metadata = try container.decodeIfPresent(ListMeta.self, forKey: .metadata) ?? ListMeta()
        // `"items": null` is how Go servers write an empty list.
        items = try container.decodeIfPresent([Item].self, forKey: .items) ?? []
        unknownFields = try container.decode(UnknownFields.self, forKey: .unknownFields)
    }

    enum CodingKeys: String, CodingKey {
        case apiVersion, kind, metadata, items, unknownFields
    }
}
