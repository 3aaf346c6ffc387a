import Foundation
@testable import Agent
@testable import ImageStore
import KubeModel
import OCI
import Synchronization

/// Images for in-process pod worker tests: one image whose root is a directory the test made;
/// its pull either completes at once or blocks until the test releases it or the pull is
/// cancelled (what a 60 MB pull over a slow link looks like to a worker).
final class FakeImageSource: PodImageSource {
    struct State {
        var present = false
        var blocking = false
        var pullsStarted = 0
        var pullsCancelled = 0
        var users: Set<String> = []
    }

    let rootfs: String
    let image: ImageRecord
    let state = Mutex(State())

    init(rootfs: String, blocking: Bool) throws {
        self.rootfs = rootfs
        let digest = try Digest("sha256:" + String(repeating: "ab", count: 32))
        image = ImageRecord(id: digest, names: ["registry.invalid/app:1"], repoDigests: ["registry.invalid/app@\(digest)"], manifestDigest: digest,
                            platform: "linux/amd64", layers: [], unpackMode: .flattened, size: 1, pulledAt: 0, lastUsedAt: 0, users: [])
        state.withLock { $0.blocking = blocking }
    }

    /// Lets blocked pulls complete.
    func finishPulls() { state.withLock { $0.blocking = false } }

    func lookup(_ text: String) throws(ImageStoreError) -> ImageRecord? {
        state.withLock { $0.present } && image.names.contains(text) ? image : nil
    }

    func pullImage(_ reference: ImageReference, registry: RegistryConfiguration) async throws -> PullResult {
        state.withLock { $0.pullsStarted += 1 }
        while state.withLock({ $0.blocking }) {
            do { try await Task.sleep(for: .milliseconds(20)) } catch {
                state.withLock { $0.pullsCancelled += 1 }
                throw error
            }
        }
        state.withLock { $0.present = true }
        return PullResult(image: image, resolvedDigest: image.id)
    }

    func configuration(of image: ImageRecord) throws(ImageStoreError) -> ImageConfiguration {
        let json = #"{"architecture":"amd64","os":"linux","config":{"Cmd":["sleep","1000"],"Env":["PATH=/bin"]},"rootfs":{"type":"layers","diff_ids":[]}}"#
        do { return try KubeJSON.decode(ImageConfiguration.self, from: json) } catch { throw .init(.invalidContent, "\(error)") }
    }

    func filesystem(of image: ImageRecord) -> ImageFilesystem { .directory(rootfs) }

    func markUsed(_ id: Digest, by user: String) throws(ImageStoreError) { _ = state.withLock { $0.users.insert(user) } }

    func release(_ id: Digest, by user: String) throws(ImageStoreError) { _ = state.withLock { $0.users.remove(user) } }
}
