import FoundationEssentials
import KubeModel
import Synchronization
import HTTPServing

extension APIServer {
    func get(_ route: RequestRoute, _ request: HTTPRequest) throws -> HTTPResponse {
        guard let name = route.name else { throw APIError.badRequest("a name is required") }
        guard let object = try store.get(route.resource, namespace: try Self.namespace(of: route), name: name) else {
            throw APIError.notFound(route.resource, name)
        }
        if Self.wantsTable(request) {
            let table = TableConverter.table(route.resource, items: [object], listRevision: nil, continueToken: nil, now: .now())
            return Self.objectResponse(200, try KubeJSON.tree(table))
        }
        return Self.objectResponse(200, object)
    }

    func list(_ route: RequestRoute, _ request: HTTPRequest) throws -> HTTPResponse {
        let labelSelector = try LabelQuery(parsing: request.query["labelSelector"] ?? "")
        let fieldSelector = try FieldSelector(parsing: request.query["fieldSelector"] ?? "", resource: route.resource)
        let limit = try request.query["limit"].map { text -> Int in
            guard let value = Int(text), value >= 0 else { throw APIError.badRequest("limit must be a non-negative integer") }
            return value
        } ?? 0
        var after: String?
        var listRevision: Int64?
        if let token = request.query["continue"], !token.isEmpty {
            (listRevision, after) = try ContinueToken.decode(token)
        }
        let (all, revision) = try store.list(route.resource, namespace: route.resource.namespaced ? route.namespace : nil, after: after)
        var items: [JSONValue] = []
        var continueToken: String?
        for object in all where Self.matches(object, labelSelector, fieldSelector) {
            if limit > 0 && items.count == limit {
                continueToken = ContinueToken.encode(revision: listRevision ?? revision, after: Self.key(items.last!))
                break
            }
            items.append(object)
        }
        let reportedRevision = listRevision ?? revision
        if Self.wantsTable(request) {
            let table = TableConverter.table(route.resource, items: items, listRevision: reportedRevision, continueToken: continueToken, now: .now())
            return Self.objectResponse(200, try KubeJSON.tree(table))
        }
        var metadata: JSONValue = ["resourceVersion": .string(String(reportedRevision))]
        if let continueToken { metadata.set(["continue"], .string(continueToken)) }
        let list: JSONValue = [
            "kind": .string(route.resource.kind + "List"), "apiVersion": .string(route.resource.apiVersion),
            "metadata": metadata, "items": .array(items),
        ]
        return Self.objectResponse(200, list)
    }

    static func matches(_ object: JSONValue, _ labels: LabelQuery, _ fields: FieldSelector) -> Bool {
        var labelMap: [String: String] = [:]
        for member in object[path: ["metadata", "labels"]]?.objectValue ?? JSONObject() {
            labelMap[member.key] = member.value.stringValue
        }
        return labels.matches(labelMap) && fields.matches(object)
    }

    static func key(_ object: JSONValue) -> String {
        "\(object.string(at: ["metadata", "namespace"]) ?? "")/\(object.string(at: ["metadata", "name"]) ?? "")"
    }

    /// A chunked stream of watch events, one JSON object per line.
    func watch(_ route: RequestRoute, _ request: HTTPRequest) throws -> HTTPResponse {
        let labelSelector = try LabelQuery(parsing: request.query["labelSelector"] ?? "")
        let fieldSelector = try FieldSelector(parsing: request.query["fieldSelector"] ?? "", resource: route.resource)
        var selectedFields = fieldSelector
        if let name = route.name {  // watching a single object by name
            selectedFields.requirements.append(("metadata.name", name, false))
        }
        let namespace = route.resource.namespaced ? route.namespace : nil
        let sendInitialEvents = request.query["sendInitialEvents"] == "true"
        let bookmarks = request.query["allowWatchBookmarks"] == "true"
        let requested = request.query["resourceVersion"] ?? ""
        if sendInitialEvents && request.query["resourceVersionMatch"] != "NotOlderThan" {
            throw APIError(code: 422, reason: "Invalid", message: "sendInitialEvents requires resourceVersionMatch=NotOlderThan")
        }
        var initial: [JSONValue] = []
        let startRevision: Int64
        if sendInitialEvents || requested.isEmpty || requested == "0" {
            let (items, revision) = try store.list(route.resource, namespace: namespace)
            initial = items.filter { Self.matches($0, labelSelector, selectedFields) }
            startRevision = revision
        } else {
            guard let revision = Int64(requested) else { throw APIError.badRequest("invalid resourceVersion \"\(requested)\"") }
            startRevision = revision
        }
        let subscription = try store.watch(route.resource, namespace: namespace, after: startRevision)
        let initialObjects = initial
        let fields = selectedFields
        let timeout = min(Int(request.query["timeoutSeconds"] ?? "") ?? 1800, 3600)
        let store = self.store
        let resource = route.resource
        let asTable = Self.wantsTable(request)
        let kind = route.resource.kind
        let apiVersion = route.resource.apiVersion
        return HTTPResponse(status: 200, headers: [("Content-Type", "application/json")], body: .stream { writer in
            defer { store.cancel(subscription) }
            let progress = WatchProgress(revision: startRevision)
            let columns = FirstTime()
            // kubectl get -w asks for Table events: one row per event, columns in the first.
            let render: @Sendable (WatchEventType, JSONValue) -> [UInt8] = { type, object in
                guard asTable else { return Self.eventLine(type, object) }
                var table = TableConverter.table(resource, items: [object], listRevision: nil, continueToken: nil, now: .now())
                if !columns.claim() { table.columnDefinitions = [] }
                return Self.eventLine(type, (try? KubeJSON.tree(table)) ?? object)
            }
            for object in initialObjects { try await writer.write(render(.added, object)) }
            if sendInitialEvents && bookmarks {
                try await writer.write(Self.bookmarkLine(kind: kind, apiVersion: apiVersion, revision: startRevision, initialEventsEnd: true))
            }
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    for await change in subscription.changes {
                        if let (type, object) = Self.filteredEvent(change, labelSelector, fields) {
                            try await writer.write(render(type, object))
                        }
                        progress.revision = change.revision
                    }
                }
                group.addTask {
                    while bookmarks {
                        try await Task.sleep(for: .seconds(60))
                        try await writer.write(Self.bookmarkLine(kind: kind, apiVersion: apiVersion, revision: progress.revision, initialEventsEnd: false))
                    }
                    try await Task.sleep(for: .seconds(timeout))
                }
                group.addTask { try await Task.sleep(for: .seconds(timeout)) }
                _ = try await group.next()
                group.cancelAll()
            }
        })
    }

    /// What a filtered watcher sees of a change: objects entering the selection are ADDED,
    /// leaving it DELETED.
    static func filteredEvent(_ change: Change, _ labels: LabelQuery, _ fields: FieldSelector) -> (WatchEventType, JSONValue)? {
        let now = matches(change.object, labels, fields)
        switch change.type {
        case .added: return now ? (.added, change.object) : nil
        case .deleted: return now ? (.deleted, change.object) : nil
        default:
            let before = change.previous.map { matches($0, labels, fields) } ?? false
            switch (before, now) {
            case (true, true): return (.modified, change.object)
            case (false, true): return (.added, change.object)
            case (true, false): return (.deleted, change.object)
            case (false, false): return nil
            }
        }
    }

    static func eventLine(_ type: WatchEventType, _ object: JSONValue) -> [UInt8] {
        KubeJSON.serialize(["type": .string(type.rawValue), "object": object]) + [0x0A]
    }

    static func bookmarkLine(kind: String, apiVersion: String, revision: Int64, initialEventsEnd: Bool) -> [UInt8] {
        var metadata: JSONValue = ["resourceVersion": .string(String(revision))]
        if initialEventsEnd { metadata.set(["annotations"], ["k8s.io/initial-events-end": "true"]) }
        return eventLine(.bookmark, ["kind": .string(kind), "apiVersion": .string(apiVersion), "metadata": metadata])
    }
}

/// The newest revision a watch has passed on, shared by its writer and bookmark tasks.
final class WatchProgress: Sendable {
    private let value: Atomic<Int64>
    init(revision: Int64) { value = Atomic(revision) }
    var revision: Int64 {
        get { value.load(ordering: .relaxed) }
        set { value.store(newValue, ordering: .relaxed) }
    }
}

/// True once: whether a watch has yet to send the table's column definitions.
final class FirstTime: Sendable {
    private let taken = Atomic<Bool>(false)
    func claim() -> Bool { !taken.exchange(true, ordering: .relaxed) }
}

/// Opaque list continuation tokens: the list's revision and the last key returned.
enum ContinueToken {
    static func encode(revision: Int64, after key: String) -> String {
        Data("\(revision)|\(key)".utf8).base64EncodedString()
    }

    static func decode(_ token: String) throws -> (Int64, String) {
        guard let data = Data(base64Encoded: token) else { throw APIError.badRequest("invalid continue token") }
        let text = String(decoding: data, as: UTF8.self)
        let parts = text.split(separator: "|", maxSplits: 1).map(String.init)
        guard parts.count == 2, let revision = Int64(parts[0]) else { throw APIError.badRequest("invalid continue token") }
        return (revision, parts[1])
    }
}
