import Foundation
import ImageStore
import IotkubeTestSupport
import OCI
import Testing

/// Local lookup, removal, prune and garbage collection, through the library (as the pod code
/// uses it) and the CLI.
@Suite(.ownThread, .enabled(if: RegistryFixture.toolsPresent, "needs docker-registry, skopeo, umoci, htpasswd, openssl, zstd, busybox-static, python3"))
struct ImageStoreLifecycleTests {
    func registry(_ fixture: RegistryFixture) -> RegistryConfiguration {
        var configuration = RegistryConfiguration()
        configuration.insecureRegistries = [fixture.open]
        return configuration
    }

    @Test func lookupByTagDigestAndID() async throws {
        let fixture = try RegistryFixture.get()
        let store = try ImageStore(stateDirectory: fixture.newStateDirectory(), unpackMode: .flattened)
        let reference = try ImageReference(parsing: "\(fixture.open)/test/multi:1")
        let result = try await store.pull(reference, registry: registry(fixture))
        let image = result.image
        #expect(try store.lookup("\(fixture.open)/test/multi:1")?.id == image.id)
        #expect(try store.lookup("\(fixture.open)/test/multi@\(result.resolvedDigest)")?.id == image.id)
        #expect(try store.lookup("\(fixture.open)/test/multi@\(image.manifestDigest)")?.id == image.id)
        #expect(try store.lookup(image.id.description)?.id == image.id)
        #expect(try store.lookup(String(image.id.hex.prefix(12)))?.id == image.id)
        #expect(try store.lookup("\(fixture.open)/test/multi:2") == nil)
        #expect(try store.lookup("\(fixture.open)/test/other:1") == nil)
        let configuration = try store.configuration(of: image)
        #expect(configuration.config?.cmd == ["sh"])
        #expect(configuration.config?.env == ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"])
        guard case .directory(let path) = store.filesystem(of: image) else { Issue.record("expected a flattened tree"); return }
        #expect(FileManager.default.fileExists(atPath: path + "/bin/busybox"))
    }

    @Test func removeUntagsSharedAndKeepsImagesInUse() async throws {
        let fixture = try RegistryFixture.get()
        let root = fixture.newStateDirectory()
        let store = try ImageStore(stateDirectory: root)
        let plain = try await store.pull(ImageReference(parsing: "\(fixture.open)/test/plain:1"), registry: registry(fixture)).image
        let busybox = try await store.pull(ImageReference(parsing: "\(fixture.open)/test/busybox:1"), registry: registry(fixture)).image
        try store.markUsed(plain.id, by: "pod-uid-1")
        #expect {
            _ = try store.remove("\(fixture.open)/test/plain:1")
        } throws: { error in
            "\(error)".contains("is in use by pod-uid-1")
        }
        // GC with thresholds that always trigger removes only what no pod uses.
        let collected = try store.collectGarbage(highPercent: 0, lowPercent: 0)
        #expect(collected.removedImages == [busybox.id])
        #expect(try store.images().map(\.id) == [plain.id])
        // The shared base layer stays with plain; it is still usable.
        if case .layers(let layers) = store.filesystem(of: plain) {
            #expect(layers.allSatisfy { FileManager.default.fileExists(atPath: $0) })
        }
        try store.release(plain.id, by: "pod-uid-1")
        let removed = try store.remove("\(fixture.open)/test/plain:1")
        #expect(removed.removedImages == [plain.id])
        #expect(try store.images().isEmpty)
        for directory in ["layers", "rootfs", "blobs/sha256", "staging", "ingest"] {
            #expect(try FileManager.default.contentsOfDirectory(atPath: "\(root)/images/\(directory)").isEmpty, "\(directory) is not empty")
        }
    }

    @Test func pullByDigestIsKeptByPruneAndFoundByDigest() async throws {
        let fixture = try RegistryFixture.get()
        let store = try ImageStore(stateDirectory: fixture.newStateDirectory(), unpackMode: .flattened)
        let tagged = try await store.pull(ImageReference(parsing: "\(fixture.open)/test/plain:1"), registry: registry(fixture))
        let byDigest = "\(fixture.open)/test/plain@\(tagged.resolvedDigest)"
        let pinned = try await store.pull(ImageReference(parsing: byDigest), registry: registry(fixture))
        #expect(pinned.image.id == tagged.image.id)
        _ = try store.remove("\(fixture.open)/test/plain:1")
        #expect(try store.lookup(byDigest) == nil, "removing the only tag removes the image")
        let again = try await store.pull(ImageReference(parsing: byDigest), registry: registry(fixture))
        #expect(again.image.names.isEmpty && again.image.pulledByDigest == true)
        #expect(try store.prune(all: false).removedImages.isEmpty)
        #expect(try store.lookup(byDigest)?.id == tagged.image.id)
        #expect(try store.prune(all: true).removedImages == [tagged.image.id])
    }

    @Test func cliListRemoveAndPrune() throws {
        let fixture = try RegistryFixture.get()
        let root = fixture.newStateDirectory()
        #expect(try fixture.pull("busybox", root: root).status == 0)
        #expect(try fixture.pull("plain", root: root).status == 0)
        let list = try fixture.agent(["ls", "--root", root, "--config", fixture.directory + "/no-agent.yaml"])
        #expect(list.status == 0)
        #expect(list.output.hasPrefix("IMAGE"))
        #expect(list.output.contains("\(fixture.open)/test/busybox:1"))
        #expect(list.output.contains("linux/amd64"))
        let removed = try fixture.agent(["rm", "--root", root, "--config", fixture.directory + "/no-agent.yaml", "\(fixture.open)/test/busybox:1"])
        #expect(removed.status == 0 && removed.output.contains("Deleted: sha256:"), "\(removed.output)")
        let missing = try fixture.agent(["rm", "--root", root, "--config", fixture.directory + "/no-agent.yaml", "\(fixture.open)/test/busybox:1"])
        #expect(missing.status != 0 && missing.output.contains("no image \"\(fixture.open)/test/busybox:1\""))
        let pruned = try fixture.agent(["prune", "--all", "--root", root, "--config", fixture.directory + "/no-agent.yaml"])
        #expect(pruned.status == 0 && pruned.output.contains("Total reclaimed space:"), "\(pruned.output)")
        #expect(try fixture.records(root: root).isEmpty)
    }
}
