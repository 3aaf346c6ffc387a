/// Tabular output for `kubectl get` (`meta.k8s.io/v1` Table).
public struct Table: KubeObject {
    public static let apiVersion = "meta.k8s.io/v1"
    public static let kind = "Table"

    public var apiVersion: String? = Table.apiVersion
    public var kind: String? = Table.kind
    public var listMetadata = ListMeta()
    public var columnDefinitions: [TableColumnDefinition] = []
    public var rows: [TableRow] = []
    public var unknownFields = UnknownFields()

    public init(columns: [TableColumnDefinition] = [], rows: [TableRow] = []) {
        columnDefinitions = columns
        self.rows = rows
    }

    /// Tables carry list metadata; this view satisfies ``KubeObject``.
    public var metadata: ObjectMeta {
        get { ObjectMeta() }
        set {}
    }

    enum CodingKeys: String, CodingKey {
        case apiVersion, kind, columnDefinitions, rows, unknownFields
        case listMetadata = "metadata"
    }
}

/// One column of a ``Table``.
public struct TableColumnDefinition: Codable, Sendable, Hashable {
    public var name: String = ""
    /// An OpenAPI type: `string`, `integer`, `number`, `boolean`, `date`.
    public var type: String = "string"
    /// An OpenAPI format hint such as `name` or `date-time`.
    public var format: String = ""
    public var description: String = ""
    /// 0 for columns shown by default, higher for `-o wide`.
    public var priority: Int32 = 0
    public var unknownFields = UnknownFields()

    public init(name: String, type: String = "string", format: String = "", description: String = "", priority: Int32 = 0) {
        self.name = name
        self.type = type
        self.format = format
        self.description = description
        self.priority = priority
    }
}

/// One row of a ``Table``: its cells and, on request, the object itself.
public struct TableRow: Codable, Sendable, Hashable {
    public var cells: [JSONValue] = []
    public var conditions: [JSONValue]?
    /// The object (or its PartialObjectMetadata) the row describes.
    public var object: JSONValue?
    public var unknownFields = UnknownFields()

    public init(cells: [JSONValue], object: JSONValue? = nil) {
        self.cells = cells
        self.object = object
    }
}
