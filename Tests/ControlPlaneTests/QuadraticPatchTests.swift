import IotkubeTestSupport
import KubeModel
import Testing

@testable import ControlPlane

/// A strategic merge patch of a list keyed by a merge key costs linear work in the list's length.
@Suite(.ownThread)
struct QuadraticPatchTests {
    /// 50,000 containers patched by name: each patch item once searched the whole list.
    @Test(.timeLimit(.minutes(1))) func mergeByKeyIsLinear() throws {
        let count = 50_000
        func containers(image: String) -> [JSONValue] {
            (0..<count).map { .object(["name": .string("c\($0)"), "image": .string(image)]) }
        }
        let pod: JSONValue = .object(["spec": .object(["containers": .array(containers(image: "old"))])])
        var patchItems = containers(image: "new")
        patchItems.append(.object(["name": "c1", "$patch": "delete"]))
        patchItems.append(.object(["name": "extra", "image": "x"]))
        patchItems.append(.object(["name": "extra", "image": "y"]))
        let result = try Patch.strategicMerge(pod, .object(["spec": .object(["containers": .array(patchItems)])]))
        guard case .array(let merged)? = result["spec"]?["containers"] else { Issue.record("no containers"); return }
        #expect(merged.count == count)
        #expect(merged.first == .object(["name": "c0", "image": "new"]))
        #expect(merged.dropFirst().first?["name"] == "c2")
        #expect(merged.last == .object(["name": "extra", "image": "y"]))
    }
}
