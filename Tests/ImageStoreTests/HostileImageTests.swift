import Foundation
import IotkubeTestSupport
import Testing

/// Hostile and broken images from a real registry: each is refused with an error naming the
/// problem, and the store is left as it was (no image, no layer, no staging or ingest files).
@Suite(.enabled(if: RegistryFixture.toolsPresent, "needs docker-registry, skopeo, umoci, htpasswd, openssl, zstd, busybox-static, python3"))
struct HostileImageTests {
    /// Pulls the shared base image first, so "no trace" means: exactly the base is there.
    func storeWithBase(_ fixture: RegistryFixture, mode: String) throws -> String {
        let root = fixture.newStateDirectory()
        let base = try fixture.pull("busybox", root: root, extra: ["--unpack-mode", mode])
        guard base.status == 0 else { throw TestFailure(base.output) }
        return root
    }

    func snapshot(_ root: String) throws -> [String] {
        let manager = FileManager.default
        var entries: [String] = []
        for directory in ["layers", "rootfs", "staging", "ingest", "blobs/sha256"] {
            entries += try manager.contentsOfDirectory(atPath: "\(root)/images/\(directory)").map { "\(directory)/\($0)" }
        }
        return entries.sorted() + [try String(contentsOfFile: root + "/images/images.json", encoding: .utf8)]
    }

    @Test(arguments: [
        ("traversal", #"layer entry "../escaped": the name contains '..' (would escape the layer)"#),
        ("absolute", #"layer entry "/abs-escaped": the name is an absolute path"#),
        ("symlink-escape", #"layer entry "up/tmp/iotkube-escaped": a symlink in its path leads above the image root"#),
        ("hardlink-escape", #"layer entry "stolen": the hard link target ../../../../etc/passwd contains '..'"#),
        ("hardlink-via-symlink", #"layer entry "stolen": a symlink in its path leads above the image root"#),
        ("wrong-diffid", "does not match the config's diff_id sha256:0000000000000000000000000000000000000000000000000000000000000000"),
        ("bomb", "refusing a decompression bomb"),
    ])
    func refusedWithoutTrace(_ tag: String, _ message: String) throws {
        let fixture = try RegistryFixture.get()
        for mode in getuid() == 0 ? ["overlay", "flattened"] : ["flattened"] {
            let root = try storeWithBase(fixture, mode: mode)
            let before = try snapshot(root)
            let result = try fixture.pull(tag, root: root, extra: ["--unpack-mode", mode])
            #expect(result.status != 0)
            #expect(result.output.contains(message), "\(mode): \(result.output)")
            #expect(result.output.contains("test/\(tag):1 layer 2"), "the error names the image and layer: \(result.output)")
            #expect(try snapshot(root) == before, "\(mode): the store changed")
        }
        #expect(!FileManager.default.fileExists(atPath: "/tmp/iotkube-escaped"))
        #expect(!FileManager.default.fileExists(atPath: NSTemporaryDirectory() + "escaped"))
    }

    @Test func absoluteSymlinksResolveInsideTheImage() throws {
        let fixture = try RegistryFixture.get()
        let root = fixture.newStateDirectory()
        let result = try fixture.pull("symlink-absolute", root: root, extra: ["--unpack-mode", "flattened"])
        #expect(result.status == 0, "\(result.output)")
        let id = try #require((try fixture.records(root: root).first?["id"] as? String)?.dropFirst(7))
        #expect(try String(contentsOfFile: "\(root)/images/rootfs/\(id)/etc/iotkube-contained", encoding: .utf8) == "stays inside\n")
        #expect(!FileManager.default.fileExists(atPath: "/etc/iotkube-contained"))
    }

    @Test func devicesAreDroppedAndSetuidCleared() throws {
        let fixture = try RegistryFixture.get()
        let root = fixture.newStateDirectory()
        let result = try fixture.pull("devices", root: root, extra: ["--unpack-mode", "flattened"])
        #expect(result.status == 0, "\(result.output)")
        #expect(result.output.contains("warning: dropped 2 device node(s): dev/evil-mem, dev/evil-sda"))
        #expect(result.output.contains("warning: cleared setuid/setgid on 2 file(s): bin/setuid-tool, bin/setgid-tool"))
        let id = try #require((try fixture.records(root: root).first?["id"] as? String)?.dropFirst(7))
        let tree = "\(root)/images/rootfs/\(id)"
        #expect(try FileManager.default.contentsOfDirectory(atPath: tree + "/dev").isEmpty)
        var info = stat()
        #expect(stat(tree + "/bin/setuid-tool", &info) == 0)
        #expect(info.st_mode & 0o7777 == 0o755)
        #expect(stat(tree + "/bin/setgid-tool", &info) == 0)
        #expect(info.st_mode & 0o7777 == 0o755)
    }
}
