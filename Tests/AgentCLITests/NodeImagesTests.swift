import IotkubeTestSupport
@testable import Agent
@testable import ImageStore
import OCI
import Testing

/// `status.images`: what the node reports from its image store.
@Suite(.ownThread) struct NodeImagesTests {
    func record(_ hex: Character, size: Int64, names: [String]) throws -> ImageRecord {
        let digest = try Digest("sha256:" + String(repeating: hex, count: 64))
        return ImageRecord(id: digest, names: names, repoDigests: ["r.io/app@\(digest)"], manifestDigest: digest, platform: "linux/amd64",
                           layers: [], unpackMode: .flattened, size: size, pulledAt: 0, lastUsedAt: 0, users: [])
    }

    @Test func largestFirstWithDigestsAndTags() throws {
        let small = try record("a", size: 10, names: ["r.io/app:1"])
        let large = try record("b", size: 99, names: [])
        let images = try #require(NodeStatusBuilder.images([small, large]))
        #expect(images.map(\.sizeBytes) == [99, 10])
        #expect(images[1].names == ["r.io/app@sha256:" + String(repeating: "a", count: 64), "r.io/app:1"])
        #expect(NodeStatusBuilder.images([]) == nil)
        let many = try (0..<60).map { _ in try record("c", size: 1, names: []) }
        #expect(NodeStatusBuilder.images(many)?.count == 50)
    }
}
