import Foundation
import IotkubeTestSupport
import Testing

/// Pulls from a real registry, compared file by file with what `umoci unpack` makes of the same
/// image: both layouts (overlay layers and flattened), multi-arch selection, zstd, many layers.
@Suite(.ownThread, .enabled(if: RegistryFixture.toolsPresent, "needs docker-registry, skopeo, umoci, htpasswd, openssl, zstd, busybox-static, python3"))
struct ImagePullTests {
    static let isRoot = getuid() == 0

    func umociListing(_ fixture: RegistryFixture, _ tag: String) throws -> String {
        let bundle = fixture.directory + "/umoci-\(tag)-\(UUID().uuidString)"
        let result = try ServerProcess.run("/usr/bin/umoci", ["unpack"] + (Self.isRoot ? [] : ["--rootless"]) + ["--image", "\(fixture.layout):\(tag)", bundle])
        guard result.status == 0 else { throw TestFailure("umoci unpack \(tag): \(result.output)") }
        defer { try? FileManager.default.removeItem(atPath: bundle) }
        return try RegistryFixture.treeListing(bundle + "/rootfs")
    }

    @Test(arguments: ["busybox", "layered", "many", "plain"])
    func flattenedMatchesUmoci(_ tag: String) throws {
        let fixture = try RegistryFixture.get()
        let root = fixture.newStateDirectory()
        let pulled = try fixture.pull(tag, root: root, extra: ["--unpack-mode", "flattened"])
        #expect(pulled.status == 0, "\(pulled.output)")
        let record = try #require(try fixture.records(root: root).first)
        let id = try #require((record["id"] as? String)?.dropFirst("sha256:".count))
        let ours = try RegistryFixture.treeListing("\(root)/images/rootfs/\(id)")
        let expected = try umociListing(fixture, tag)
        #expect(ours == expected)
        #expect(ours.contains("bin/busybox|f|755|0|0|"))
    }

    @Test(arguments: ["layered", "many", "plain"])
    func overlayLayersMountToWhatUmociUnpacks(_ tag: String) throws {
        guard Self.isRoot else {
            print("skipped: overlay layers need root (whiteout devices, trusted.overlay xattrs, mounting)")
            return
        }
        let fixture = try RegistryFixture.get()
        let root = fixture.newStateDirectory()
        let pulled = try fixture.pull(tag, root: root, extra: ["--unpack-mode", "overlay"])
        #expect(pulled.status == 0, "\(pulled.output)")
        let record = try #require(try fixture.records(root: root).first)
        let layers = try #require(record["layers"] as? [String]).map { "\(root)/images/layers/\($0.dropFirst("sha256:".count))" }
        #expect(try RegistryFixture.overlayListing(layers) == umociListing(fixture, tag))
    }

    @Test func dockerSchema2MediaTypes() throws {
        let fixture = try RegistryFixture.get()
        let manifest = try ServerProcess.run("/usr/bin/curl", ["-s", "-H", "Accept: application/vnd.docker.distribution.manifest.v2+json",
                                                               "http://\(fixture.open)/v2/test/layered-docker/manifests/1"])
        #expect(manifest.output.contains("application/vnd.docker.image.rootfs.diff.tar.gzip"), "\(manifest.output)")
        let root = fixture.newStateDirectory()
        let pulled = try fixture.pull("layered-docker", root: root, extra: ["--unpack-mode", "flattened"])
        #expect(pulled.status == 0, "\(pulled.output)")
        let id = try #require((try fixture.records(root: root).first?["id"] as? String)?.dropFirst(7))
        #expect(try RegistryFixture.treeListing("\(root)/images/rootfs/\(id)") == umociListing(fixture, "layered"))
    }

    /// umoci cannot read zstd layers: the zstd image holds busybox's files plus z.txt.
    @Test func zstdLayers() throws {
        let fixture = try RegistryFixture.get()
        let root = fixture.newStateDirectory()
        let pulled = try fixture.pull("zstd", root: root, extra: ["--unpack-mode", "flattened"])
        #expect(pulled.status == 0, "\(pulled.output)")
        let id = try #require((try fixture.records(root: root).first?["id"] as? String)?.dropFirst(7))
        let tree = "\(root)/images/rootfs/\(id)"
        #expect(try String(contentsOfFile: tree + "/z.txt", encoding: .utf8) == String(repeating: "zstd\n", count: 1000))
        try FileManager.default.removeItem(atPath: tree + "/z.txt")
        #expect(try RegistryFixture.treeListing(tree) == umociListing(fixture, "busybox"))
    }

    @Test func whiteoutsHardLinksAndAttributes() throws {
        let fixture = try RegistryFixture.get()
        let root = fixture.newStateDirectory()
        #expect(try fixture.pull("layered", root: root, extra: ["--unpack-mode", "flattened"]).status == 0)
        let id = try #require((try fixture.records(root: root).first?["id"] as? String)?.dropFirst(7))
        let tree = "\(root)/images/rootfs/\(id)"
        let manager = FileManager.default
        #expect(!manager.fileExists(atPath: tree + "/data/gonedir"))
        #expect(try String(contentsOfFile: tree + "/data/gone", encoding: .utf8) == "back again\n")
        #expect(try manager.contentsOfDirectory(atPath: tree + "/opaque").sorted() == ["new"])
        #expect(try manager.destinationOfSymbolicLink(atPath: tree + "/replaced") == "/data/keep")
        var keep = stat(), hard = stat()
        #expect(stat(tree + "/data/keep", &keep) == 0 && stat(tree + "/data/hard", &hard) == 0)
        #expect(keep.st_ino == hard.st_ino)
        #expect(try manager.contentsOfDirectory(atPath: tree).filter { $0.hasPrefix(".wh.") }.isEmpty)
        // The PAX xattr, where the file system keeps user attributes.
        let attribute = try ServerProcess.run(ServerProcess.findExecutable("python3") ?? "/usr/bin/python3",
                                              ["-c", "import os,sys; print(os.getxattr(sys.argv[1], 'user.iotkube').decode())", tree + "/attrs"])
        if !attribute.output.contains("Operation not supported") {
            #expect(attribute.output == "yes\n", "\(attribute.output)")
        }
        if Self.isRoot {
            var owned = stat()
            #expect(stat(tree + "/owned", &owned) == 0 && owned.st_uid == 1000 && owned.st_mode & 0o777 == 0o640)
        }
    }

    @Test func multiArchIndexPicksThisBoardOrTheAskedPlatform() throws {
        let fixture = try RegistryFixture.get()
        for (platform, marker) in [(nil, "amd64/"), ("linux/arm64", "arm64/v8"), ("linux/arm/v7", "arm/v7"), ("linux/arm/v6", "arm/v6")] {
            let root = fixture.newStateDirectory()
            let pulled = try fixture.pull("multi", root: root, extra: ["--unpack-mode", "flattened"] + (platform.map { ["--platform", $0] } ?? []))
            #expect(pulled.status == 0, "\(pulled.output)")
            let id = try #require((try fixture.records(root: root).first?["id"] as? String)?.dropFirst(7))
            #expect(try String(contentsOfFile: "\(root)/images/rootfs/\(id)/etc/arch", encoding: .utf8) == marker + "\n", "platform \(platform ?? "host")")
        }
        let root = fixture.newStateDirectory()
        let v5 = try fixture.pull("multi", root: root, extra: ["--platform", "linux/arm/v5"])
        #expect(v5.status != 0)
        #expect(v5.output.contains("no image for linux/arm/v5 (the index offers linux/amd64, linux/arm64/v8, linux/arm/v7, linux/arm/v6)"))
        let armOnly = try fixture.pull("armonly", root: root)
        #expect(armOnly.status != 0)
        #expect(armOnly.output.contains("no image for linux/amd64"))
        let arm64 = try fixture.pull("arm64", root: root)
        #expect(arm64.status != 0)
        #expect(arm64.output.contains("is a linux/arm64/v8 image; this board is linux/amd64"))
        #expect(try fixture.records(root: root).isEmpty)
    }

    @Test func sharedLayersAreStoredOnceAndPullsAreIdempotent() throws {
        guard Self.isRoot else {
            print("skipped: overlay layer sharing needs root")
            return
        }
        let fixture = try RegistryFixture.get()
        let root = fixture.newStateDirectory()
        #expect(try fixture.pull("busybox", root: root, extra: ["--unpack-mode", "overlay"]).status == 0)
        let second = try fixture.pull("plain", root: root, extra: ["--unpack-mode", "overlay"])
        #expect(second.status == 0)
        #expect(second.output.contains("2 layers (1 already present)"))
        let again = try fixture.pull("plain", root: root, extra: ["--unpack-mode", "overlay"])
        #expect(again.output.contains("2 layers (2 already present), 0 bytes downloaded"), "\(again.output)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: root + "/images/layers").count == 2)
        // The compressed copies are gone once unpacked; manifests and configs stay.
        let blobs = try FileManager.default.contentsOfDirectory(atPath: root + "/images/blobs/sha256")
        #expect(blobs.count == 4)
    }

    @Test func concurrentPullsOfOneImageShareTheWork() throws {
        let fixture = try RegistryFixture.get()
        let root = fixture.newStateDirectory()
        let results = UnsafeResults()
        DispatchQueue.concurrentPerform(iterations: 3) { index in
            let result = try? fixture.pull("many", root: root)
            results.set(index, result)
        }
        for result in results.all {
            #expect(result?.status == 0, "\(result?.output ?? "no result")")
        }
        let records = try fixture.records(root: root)
        #expect(records.count == 1)
        #expect((records.first?["layers"] as? [String])?.count == 41)
        #expect(try FileManager.default.contentsOfDirectory(atPath: root + "/images/staging").isEmpty)
        #expect(try FileManager.default.contentsOfDirectory(atPath: root + "/images/ingest").isEmpty)
    }
}

/// Results gathered from concurrentPerform.
final class UnsafeResults: @unchecked Sendable {
    private let lock = NSLock()
    private var values: [Int: (status: Int32, output: String)?] = [:]
    func set(_ index: Int, _ value: (status: Int32, output: String)?) { lock.withLock { values[index] = value } }
    var all: [(status: Int32, output: String)?] { lock.withLock { values.keys.sorted().map { values[$0]! } } }
}
