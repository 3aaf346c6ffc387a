import Testing

@testable import KubeModel

/// Fields a newer API server sends survive decode → encode, at every level of every object.
struct UnknownFieldsTests {
    /// Members whose values are string-keyed maps (labels, limits, …) rather than API structs.
    static let mapFields: Set<String> = [
        "labels", "annotations", "limits", "requests", "nodeSelector", "data", "stringData", "binaryData",
        "capacity", "allocatable", "overhead", "extra", "allocatedResources",
    ]
    /// Members the model keeps as opaque JSON: anything inside them survives trivially.
    static let opaqueFields: Set<String> = ["managedFields", "affinity", "persistentVolumeClaim"]

    /// Adds `"x-future-<n>": {"nested": n}` to every API object in the tree; returns how many.
    static func injectUnknownFields(_ tree: JSONValue, counter: inout Int) -> JSONValue {
        switch tree {
        case .array(let items):
            return .array(items.map { injectUnknownFields($0, counter: &counter) })
        case .object(let object):
            var result = JSONObject()
            for member in object {
                let isOpaque = mapFields.contains(member.key) || opaqueFields.contains(member.key)
                result[member.key] = isOpaque ? member.value : injectUnknownFields(member.value, counter: &counter)
            }
            counter += 1
            result["x-future-\(counter)"] = ["nested": .integer(counter), "list": [1, "two"]]
            return .object(result)
        default:
            return tree
        }
    }

    static func countMarkers(_ tree: JSONValue) -> Int {
        switch tree {
        case .array(let items): return items.reduce(0) { $0 + countMarkers($1) }
        case .object(let object):
            return object.reduce(0) { total, member in
                let own = member.key.hasPrefix("x-future-") && member.value["nested"] != nil ? 1 : 0
                return total + own + countMarkers(member.value)
            }
        default: return 0
        }
    }

    static let fixtureNames = Fixtures.podFixtures + ["node.json", "lease.yaml", "event.yaml", "csr.yaml", "configmap-secret.yaml"]

    @Test(arguments: fixtureNames)
    func unknownFieldsSurviveRoundTrip(_ name: String) throws {
        for tree in try Fixtures.trees(name) {
            var injected = 0
            let future = Self.injectUnknownFields(tree, counter: &injected)
            #expect(injected > 1, "\(name): markers injected")
            let written = try roundTripByKind(future)
            #expect(Self.countMarkers(written) == injected, "\(name): \(injected) unknown fields injected")
            // Each marker comes back at the same place with the same value.
            #expect(try roundTripByKind(written) == written)
            // And strict validation names them.
            #expect(throws: KubeDecodingError.self) { try roundTripByKind(future, validation: .strict) }
        }
    }

    @Test func unknownFieldsAreWrittenWhereTheyWere() throws {
        let text = #"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","futureMeta":true},"spec":{"containers":[{"name":"c","futureField":{"a":[1,2]}}],"futureSpec":"x"}}"#
        var pod = try KubeJSON.decode(Pod.self, from: text)
        #expect(pod.spec?.unknownFields.members["futureSpec"] == "x")
        pod.spec?.containers[0].image = "busybox"
        let written = try KubeJSON.tree(pod)
        #expect(written["metadata"]?["futureMeta"] == true)
        #expect(written["spec"]?["futureSpec"] == "x")
        guard case .array(let containers)? = written["spec"]?["containers"] else {
            Issue.record("containers missing")
            return
        }
        #expect(containers[0]["futureField"] == ["a": [1, 2]])
        #expect(containers[0]["image"] == "busybox")
    }

    @Test func typedFieldsWinOverStaleUnknownCopies() throws {
        // A field the model knows is never duplicated from the unknown set.
        var meta = ObjectMeta(name: "a")
        let stale: JSONValue = ["name": "stale", "other": 1]
        meta.unknownFields = UnknownFields(stale.objectValue!)
        let written = try KubeJSON.tree(meta)
        #expect(written["name"] == "a")
        #expect(written["other"] == 1)
    }
}

struct DiscardingUnknownFieldsTests {
    @Test func discardDropsButReports() throws {
        let text = #"{"kind":"Pod","metadata":{"name":"p","futureMeta":1},"spec":{"containers":[{"name":"c","futureField":2}]}}"#
        let tree = try KubeJSON.parse(Array(text.utf8))
        let (pod, unknown) = try KubeJSON.decodeReportingUnknownFields(Pod.self, from: tree, validation: .discard)
        #expect(unknown == ["metadata.futureMeta", "spec.containers[0].futureField"])
        let written = try KubeJSON.tree(pod)
        #expect(written["metadata"]?["futureMeta"] == nil)
        #expect(written["metadata"]?["name"] == "p")
    }
}
