import Testing

@testable import KubeModel

/// Lists, watch events, Status errors and Tables as API servers write them.
struct ListAndWatchCodingTests {
    @Test func podListFromAServer() throws {
        let text = """
            {"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"184470","continue":"eyJ2IjoibWV0YS5rOHMuaW8vdjEifQ","remainingItemCount":3},
             "items":[{"metadata":{"name":"a","namespace":"default"},"spec":{"containers":[{"name":"c","image":"busybox"}]}}]}
            """
        let list = try KubeJSON.decode(KubeList<Pod>.self, from: text, validation: .strict)
        #expect(list.metadata.continueToken == "eyJ2IjoibWV0YS5rOHMuaW8vdjEifQ")
        #expect(list.metadata.remainingItemCount == 3)
        #expect(list.items.first?.metadata.name == "a")
        #expect(list.items.first?.kind == nil)  // items in lists carry no kind
        let written = try KubeJSON.tree(list)
        #expect(written["metadata"]?["continue"] == "eyJ2IjoibWV0YS5rOHMuaW8vdjEifQ")
        #expect(written["kind"] == "PodList")
        let empty = try KubeJSON.decode(KubeList<Node>.self, from: #"{"kind":"NodeList","apiVersion":"v1","metadata":{},"items":null}"#)
        #expect(empty.items.isEmpty)
    }

    @Test func watchEventsIncludingBookmarkAndError() throws {
        let lines = [
            #"{"type":"ADDED","object":{"kind":"Pod","apiVersion":"v1","metadata":{"name":"a","resourceVersion":"10"},"spec":{"containers":[{"name":"c"}]}}}"#,
            #"{"type":"BOOKMARK","object":{"kind":"Pod","apiVersion":"v1","metadata":{"resourceVersion":"12","annotations":{"k8s.io/initial-events-end":"true"}}}}"#,
            #"{"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"too old resource version: 1 (10)","reason":"Expired","code":410}}"#,
        ]
        let added = try KubeJSON.decode(WatchEvent<Pod>.self, from: lines[0])
        #expect(added.type == .added)
        #expect(added.object?.metadata.resourceVersion == "10")
        let bookmark = try KubeJSON.decode(WatchEvent<Pod>.self, from: lines[1])
        #expect(bookmark.type == .bookmark)
        #expect(bookmark.object?.metadata.annotations?["k8s.io/initial-events-end"] == "true")
        let error = try KubeJSON.decode(WatchEvent<Pod>.self, from: lines[2])
        #expect(error.type == .error)
        #expect(error.status?.code == 410)
        #expect(error.status?.reason == "Expired")
        for line in lines {
            let event = try KubeJSON.decode(WatchEvent<Pod>.self, from: line)
            #expect(try KubeJSON.decode(WatchEvent<Pod>.self, from: try KubeJSON.encode(event)) == event)
        }
        #expect(throws: KubeDecodingError.self) { try KubeJSON.decode(WatchEvent<Pod>.self, from: #"{"type":"CHANGED","object":{}}"#) }
    }

    @Test func statusErrorObject() throws {
        let status = Status(code: 409, reason: "Conflict", message: "the object has been modified",
                            details: StatusDetails(name: "a", kind: "pods", causes: [StatusCause(reason: "FieldValueInvalid", message: "bad", field: "spec.containers[0].name")]))
        let written = try KubeJSON.tree(status)
        #expect(written == [
            "apiVersion": "v1", "kind": "Status", "metadata": [:], "status": "Failure", "message": "the object has been modified",
            "reason": "Conflict",
            "details": ["name": "a", "kind": "pods", "causes": [["reason": "FieldValueInvalid", "message": "bad", "field": "spec.containers[0].name"]]],
            "code": 409,
        ])
        #expect(try KubeJSON.decode(Status.self, from: KubeJSON.serialize(written), validation: .strict) == status)
    }

    @Test func tableForKubectl() throws {
        let table = Table(
            columns: [TableColumnDefinition(name: "Name", format: "name", description: "Name of the object"),
                      TableColumnDefinition(name: "Restarts", type: "integer", priority: 0)],
            rows: [TableRow(cells: ["web", 3], object: ["kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": ["name": "web"]])])
        let written = try KubeJSON.tree(table)
        #expect(written["apiVersion"] == "meta.k8s.io/v1")
        #expect(written["columnDefinitions"] == [
            ["name": "Name", "type": "string", "format": "name", "description": "Name of the object", "priority": 0],
            ["name": "Restarts", "type": "integer", "format": "", "description": "", "priority": 0],
        ])
        #expect(try KubeJSON.decode(Table.self, from: KubeJSON.serialize(written), validation: .strict) == table)
    }

    @Test func encodingIsDeterministic() throws {
        var meta = ObjectMeta(name: "a")
        meta.labels = Dictionary(uniqueKeysWithValues: (0..<50).map { ("key-\($0)", "v\($0)") })
        let first = try KubeJSON.encode(meta)
        for _ in 0..<5 { #expect(try KubeJSON.encode(meta) == first) }
        let text = String(decoding: first, as: UTF8.self)
        #expect(text.hasPrefix(#"{"name":"a","labels":{"key-0":"v0","key-1":"v1","key-10":"v10""#))
    }
}
