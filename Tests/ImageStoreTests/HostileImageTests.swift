import Foundation
import IotkubeTestSupport
import Testing

/// Hostile and broken images from a real registry: each is refused with an error naming the
/// problem, and the store is left as it was (no image, no layer, no staging or ingest files).
@Suite(.ownThread, .enabled(if: RegistryFixture.toolsPresent, "needs docker-registry, skopeo, umoci, htpasswd, openssl, zstd, busybox-static, python3"))
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

    /// A host file and directory (next to the registry's layout, where the hostile layers point)
    /// with known metadata; returns what `stat` says of each.
    func plantHostTargets(_ fixture: RegistryFixture) throws -> [String: stat] {
        let file = fixture.directory + "/host-victim", directory = fixture.directory + "/host-victim-dir/sub"
        try? FileManager.default.removeItem(atPath: file)
        try? FileManager.default.removeItem(atPath: fixture.directory + "/host-victim-dir")
        try "host data\n".write(toFile: file, atomically: false, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        #expect(chmod(file, 0o640) == 0 && chmod(directory, 0o750) == 0)
        return try [file, directory].reduce(into: [:]) { result, path in result[path] = try metadata(path) }
    }

    func metadata(_ path: String) throws -> stat {
        var info = stat()
        guard lstat(path, &info) == 0 else { throw TestFailure("lstat \(path): \(errno)") }
        return info
    }

    /// A directory entry (6777, uid 4242) that the same layer then replaces with a symlink to a host
    /// file, or whose parent it replaces with a symlink to a host directory: the metadata applied
    /// after the layer must not reach the host (it did through `fchmodat` by path).
    @Test func directoryMetadataStaysInsideTheImage() throws {
        let fixture = try RegistryFixture.get()
        // One after the other: both images point at the same host paths.
        let modes = getuid() == 0 ? ["overlay", "flattened"] : ["flattened"]
        for tag in ["chmod-via-symlink", "chmod-via-parent"] { for mode in modes {
            let before = try plantHostTargets(fixture)
            let root = fixture.newStateDirectory()
            let result = try fixture.pull(tag, root: root, extra: ["--unpack-mode", mode])
            #expect(result.status == 0, "\(tag) \(mode): \(result.output)")
            for (path, old) in before {
                let now = try metadata(path)
                #expect(now.st_mode == old.st_mode, "\(tag) \(mode): \(path) mode \(String(now.st_mode, radix: 8))")
                #expect(now.st_uid == old.st_uid && now.st_gid == old.st_gid, "\(tag) \(mode): \(path) owner \(now.st_uid):\(now.st_gid)")
                #expect(now.st_mtim.tv_sec == old.st_mtim.tv_sec, "\(tag) \(mode): \(path) mtime")
            }
        } }
    }

    /// A lower layer's symlink to a host directory must not lend that directory's mode and owner
    /// to the directory the next layer creates at the same path (overlay mode looks below).
    @Test(.enabled(if: getuid() == 0, "overlay mode needs root")) func lowerLayerSymlinksAreNotFollowed() throws {
        let fixture = try RegistryFixture.get()
        let hostDirectory = fixture.directory + "/host-peek-dir/sub"
        try FileManager.default.createDirectory(atPath: hostDirectory, withIntermediateDirectories: true)
        #expect(chmod(hostDirectory, 0o701) == 0 && chown(hostDirectory, 4243, 4243) == 0)
        let root = fixture.newStateDirectory()
        let result = try fixture.pull("lower-symlink", root: root, extra: ["--unpack-mode", "overlay"])
        #expect(result.status == 0, "\(result.output)")
        let layers = try FileManager.default.contentsOfDirectory(atPath: root + "/images/layers")
        // The top layer's own peek/sub (the lower layer's peek is the symlink).
        let created = try #require(layers.map { "\(root)/images/layers/\($0)/peek" }.first { (try? metadata($0).st_mode & S_IFMT) == S_IFDIR })
        let info = try metadata(created + "/sub")
        #expect(info.st_mode & 0o7777 == 0o755 && info.st_uid == 0, "took the host directory's metadata: \(String(info.st_mode, radix: 8)) \(info.st_uid)")
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
