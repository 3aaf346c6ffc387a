import Foundation
import ImageStore
import IotkubeTestSupport
import OCI
import Testing

/// `images import` and the pre-load directory: archives written by real tools (skopeo's
/// oci-archive and docker-archive, compressed with real gzip and zstd) and hostile archives
/// written here, each refused with an error naming the problem and leaving no trace.
@Suite(.ownThread, .enabled(if: RegistryFixture.toolsPresent, "needs docker-registry, skopeo, umoci, htpasswd, openssl, zstd, busybox-static, python3"))
struct ImageImportTests {
    static let config = "/nonexistent/agent.yaml"

    func importArchives(_ fixture: RegistryFixture, root: String, _ files: [String], extra: [String] = []) throws -> (status: Int32, output: String) {
        try fixture.agent(["import", "--root", root, "--config", Self.config] + extra + files)
    }

    func run(_ executable: String, _ arguments: [String]) throws -> String {
        let result = try ServerProcess.run(executable, arguments, timeout: 300)
        guard result.status == 0 else { throw TestFailure("\(executable) \(arguments.joined(separator: " ")): \(result.output)") }
        return result.output
    }

    /// A fresh directory for archives.
    func archiveDirectory(_ fixture: RegistryFixture) throws -> String {
        let path = fixture.directory + "/archives-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// The store's files besides images.json: what an import that failed must not leave.
    func leftovers(_ root: String) throws -> [String] {
        var entries: [String] = []
        for directory in ["layers", "rootfs", "staging", "ingest", "blobs/sha256"] {
            let path = "\(root)/images/\(directory)"
            guard FileManager.default.fileExists(atPath: path) else { continue }
            entries += try FileManager.default.contentsOfDirectory(atPath: path).map { "\(directory)/\($0)" }
        }
        return entries.sorted()
    }

    @Test func ociAndDockerArchivesCompressedOrNotGiveThePulledImage() throws {
        let fixture = try RegistryFixture.get()
        let archives = try archiveDirectory(fixture)
        _ = try run("/usr/bin/skopeo", ["copy", "-q", "oci:\(fixture.layout):layered", "oci-archive:\(archives)/layered-oci.tar:docker.io/test/layered:1"])
        _ = try run("/usr/bin/skopeo", ["copy", "-q", "oci:\(fixture.layout):layered", "docker-archive:\(archives)/layered-docker.tar:test/layered-docker:2"])
        for name in ["layered-oci", "layered-docker"] {
            _ = try run("/bin/sh", ["-c", "gzip -c \(archives)/\(name).tar > \(archives)/\(name).tar.gz && zstd -q -c \(archives)/\(name).tar > \(archives)/\(name).tar.zst"])
        }
        for mode in getuid() == 0 ? ["overlay", "flattened"] : ["flattened"] {
            // The same image pulled from the registry is what every import must give.
            let pulledRoot = fixture.newStateDirectory()
            let pulled = try fixture.pull("layered", root: pulledRoot, extra: ["--unpack-mode", mode])
            #expect(pulled.status == 0, "\(pulled.output)")
            let reference = try #require(try fixture.records(root: pulledRoot).first)
            let expectedTree = mode == "flattened" ? try RegistryFixture.treeListing("\(pulledRoot)/images/rootfs/\((reference["id"] as? String ?? "").dropFirst(7))") : ""
            for file in ["layered-oci.tar", "layered-oci.tar.gz", "layered-oci.tar.zst", "layered-docker.tar", "layered-docker.tar.gz", "layered-docker.tar.zst"] {
                let root = fixture.newStateDirectory()
                let result = try importArchives(fixture, root: root, ["\(archives)/\(file)"], extra: ["--unpack-mode", mode])
                #expect(result.status == 0, "\(mode) \(file): \(result.output)")
                let name = file.hasPrefix("layered-oci") ? "docker.io/test/layered:1" : "docker.io/test/layered-docker:2"
                #expect(result.output.contains("Imported \(name) (linux/"), "\(file): \(result.output)")
                let record = try #require(try fixture.records(root: root).first, "\(file)")
                #expect(record["names"] as? [String] == [name], "\(file)")
                #expect(record["id"] as? String == reference["id"] as? String, "\(file): the image ID is the config's digest")
                #expect(record["layers"] as? [String] == reference["layers"] as? [String], "\(file): the same diffIDs")
                if mode == "flattened" {
                    #expect(try RegistryFixture.treeListing("\(root)/images/rootfs/\((record["id"] as? String ?? "").dropFirst(7))") == expectedTree, "\(file)")
                } else {
                    let layers = (record["layers"] as? [String] ?? []).map { "\(root)/images/layers/\($0.dropFirst(7))" }
                    #expect(try RegistryFixture.overlayListing(layers) == (try RegistryFixture.overlayListing(layers.map { $0.replacingOccurrences(of: root, with: pulledRoot) })), "\(file)")
                }
                // Only the config and the manifest stay as blobs; no partial file is left.
                let blobs = try FileManager.default.contentsOfDirectory(atPath: "\(root)/images/blobs/sha256").sorted()
                #expect(blobs == [String((record["id"] as? String ?? "").dropFirst(7)), String((record["manifestDigest"] as? String ?? "").dropFirst(7))].sorted(), "\(file): \(blobs)")
                #expect(try FileManager.default.contentsOfDirectory(atPath: "\(root)/images/ingest").isEmpty)
            }
        }
    }

    @Test func aMultiPlatformArchiveGivesThisBoardsImageAndAForeignOneIsRefused() throws {
        let fixture = try RegistryFixture.get()
        let archives = try archiveDirectory(fixture)
        _ = try run("/usr/bin/skopeo", ["copy", "-q", "--all", "oci:\(fixture.layout):multi", "oci-archive:\(archives)/multi.tar:registry.local/test/multi:1"])
        _ = try run("/usr/bin/skopeo", ["copy", "-q", "--all", "oci:\(fixture.layout):armonly", "oci-archive:\(archives)/armonly.tar:registry.local/test/armonly:1"])
        let root = fixture.newStateDirectory()
        let multi = try importArchives(fixture, root: root, ["\(archives)/multi.tar"])
        #expect(multi.status == 0, "\(multi.output)")
        let host = HostPlatform.current()
        #expect(try fixture.records(root: root).first?["platform"] as? String == host.normalized.description)
        let before = try leftovers(root)
        let foreign = try importArchives(fixture, root: root, ["\(archives)/armonly.tar"])
        #expect(foreign.status != 0)
        #expect(foreign.output.contains("registry.local/test/armonly:1: no image for \(host)"), "\(foreign.output)")
        #expect(try leftovers(root) == before, "the refused import left files behind")
        #expect(try fixture.records(root: root).count == 1)
    }

    @Test(arguments: [
        ("traversal", #"layer entry "../escaped": the name contains '..' (would escape the layer)"#),
        ("symlink-escape", #"layer entry "up/tmp/iotkube-escaped": a symlink in its path leads above the image root"#),
        ("hardlink-escape", #"layer entry "stolen": the hard link target ../../../../etc/passwd contains '..'"#),
        ("wrong-diffid", "does not match the config's diff_id sha256:0000000000000000000000000000000000000000000000000000000000000000"),
    ])
    func hostileLayersInAnArchiveAreRefusedAsFromARegistry(_ tag: String, _ message: String) throws {
        let fixture = try RegistryFixture.get()
        let archives = try archiveDirectory(fixture)
        _ = try run("/usr/bin/skopeo", ["copy", "-q", "oci:\(fixture.layout):\(tag)", "oci-archive:\(archives)/\(tag).tar:docker.io/test/\(tag):1"])
        for mode in getuid() == 0 ? ["overlay", "flattened"] : ["flattened"] {
            let root = fixture.newStateDirectory()
            let result = try importArchives(fixture, root: root, ["\(archives)/\(tag).tar"], extra: ["--unpack-mode", mode])
            #expect(result.status != 0)
            #expect(result.output.contains(message), "\(mode): \(result.output)")
            // Lower layers that unpacked and matched their diffIDs stay for a later import, as
            // after a failed pull; nothing else does, and prune takes them.
            let left = try leftovers(root)
            #expect(left.allSatisfy { $0.hasPrefix("layers/") }, "\(mode): \(left)")
            #expect(try fixture.records(root: root).isEmpty)
            #expect(try fixture.agent(["prune", "--root", root, "--config", Self.config]).status == 0)
            #expect(try leftovers(root).isEmpty)
        }
        #expect(!FileManager.default.fileExists(atPath: "/tmp/iotkube-escaped"))
    }

    /// Archives no tool would write, made with Python's tarfile: each refused with what is wrong.
    @Test func craftedArchivesAreRefusedWithoutTrace() throws {
        let fixture = try RegistryFixture.get()
        let archives = try archiveDirectory(fixture)
        let escape = fixture.directory + "/archive-escape-\(UUID().uuidString.prefix(6))"
        _ = try run("/usr/bin/python3", ["-c", Self.craftArchives, archives, fixture.layout, escape])
        let cases: [(String, String)] = [
            ("wrong-blob.tar", "content has digest sha256:"),
            ("links-outside.tar", "has no manifest sha256:"),
            ("truncated.tar", "truncated"),
            ("not-a-tar.tar", "not a tar archive"),
            ("lying-size.tar", "has 2 bytes, not the declared 0"),
            ("unnamed.tar", "no named image to import: index.json entry 1"),
            ("bad-json.tar", "index.json:"),
            ("no-index.tar", "neither index.json"),
            ("docker-missing-layer.tar", "the archive has no layer file missing/layer.tar"),
            ("link-loop.tar", "the archive has no config file loop-a"),
            ("pax-overflow.tar", "malformed PAX extended header"),
            ("pax-empty-mtime.tar", "neither index.json"),
            ("long-name.tar", "GNU long name of 5000 bytes is longer than 4096"),
        ]
        for (file, message) in cases {
            let root = fixture.newStateDirectory()
            let result = try importArchives(fixture, root: root, ["\(archives)/\(file)"])
            #expect(result.status != 0, "\(file)")
            #expect(result.output.contains(message), "\(file): \(result.output)")
            #expect(result.output.contains(file), "\(file): the error names the archive: \(result.output)")
            let left = try leftovers(root)
            #expect(left.isEmpty, "\(file): \(left)")
        }
        // Entry names climbing out and links to host files were only ever looked up.
        #expect(!FileManager.default.fileExists(atPath: escape))
        #expect(!FileManager.default.fileExists(atPath: "/iotkube-archive-absolute"))
    }

    @Test func aDecompressionBombStopsAtTheFreeSpaceAndLeavesNothing() throws {
        guard getuid() == 0 else {
            print("skipped: a small tmpfs for the store needs root")
            return
        }
        let fixture = try RegistryFixture.get()
        let archives = try archiveDirectory(fixture)
        // 512 MiB of zeros in one entry: under 1 MiB compressed.
        _ = try run("/bin/sh", ["-c", """
            cd "$1" && python3 -c 'import tarfile,io,sys
            class Zeros(io.RawIOBase):
                def __init__(self, n): self.n = n
                def readable(self): return True
                def readinto(self, b):
                    k = min(len(b), self.n); b[:k] = bytes(k); self.n -= k; return k
            with tarfile.open(fileobj=sys.stdout.buffer, mode="w|") as t:
                i = tarfile.TarInfo("blobs/sha256/" + "0" * 64); i.size = 512 << 20
                t.addfile(i, io.BufferedReader(Zeros(i.size)))' | gzip -1 > bomb.tar.gz
            """, "sh", archives])
        let store = fixture.directory + "/small-\(UUID().uuidString.prefix(6))"
        try FileManager.default.createDirectory(atPath: store, withIntermediateDirectories: true)
        let script = """
            mount -t tmpfs -o size=96m iotkube-small "$1" && "$2" images import --root "$1" --config /nonexistent "$3"; status=$?
            echo "status=$status"; find "$1/images/ingest" "$1/images/blobs" -type f; df -k "$1" | tail -1
            """
        let result = try ServerProcess.run("/usr/bin/unshare", ["-m", "--propagation", "private", "/bin/sh", "-c", script, "sh", store, RegistryFixture.agent, archives + "/bomb.tar.gz"], timeout: 300)
        #expect(!result.output.contains("status=0"), "\(result.output)")
        #expect(result.output.contains("disk full"), "\(result.output)")
        #expect(result.output.contains("bomb.tar.gz"), "\(result.output)")
        #expect(!result.output.contains("/images/ingest/") && !result.output.contains("/images/blobs/sha256/"), "files were left: \(result.output)")
    }

    @Test func pinnedImagesSurvivePruneAndGarbageCollection() throws {
        let fixture = try RegistryFixture.get()
        let archives = try archiveDirectory(fixture)
        _ = try run("/usr/bin/skopeo", ["copy", "-q", "oci:\(fixture.layout):plain", "oci-archive:\(archives)/plain.tar:docker.io/test/plain:1"])
        _ = try run("/usr/bin/skopeo", ["copy", "-q", "oci:\(fixture.layout):zstd", "oci-archive:\(archives)/zstd.tar:docker.io/test/zstd:1"])
        let root = fixture.newStateDirectory()
        #expect(try importArchives(fixture, root: root, ["\(archives)/plain.tar"], extra: ["--pin"]).status == 0)
        #expect(try importArchives(fixture, root: root, ["\(archives)/zstd.tar"]).status == 0)
        let prune = try fixture.agent(["prune", "--all", "--root", root, "--config", Self.config])
        #expect(prune.status == 0, "\(prune.output)")
        #expect(try fixture.records(root: root).compactMap { $0["names"] as? [String] } == [["docker.io/test/plain:1"]])
        // Garbage collection at any fullness keeps it too.
        let store = try ImageStore(stateDirectory: root)
        _ = try store.collectGarbage(highPercent: 0, lowPercent: 0)
        #expect(try store.images().map(\.names) == [["docker.io/test/plain:1"]])
        let list = try fixture.agent(["ls", "--root", root, "--config", Self.config])
        #expect(list.output.contains("pinned"), "\(list.output)")
    }

    /// Sets a file's modification time `secondsAgo` in the past (a copy finished a while ago).
    func age(_ path: String, secondsAgo: Int) {
        var times = [timespec(tv_sec: time(nil) - secondsAgo, tv_nsec: 0), timespec(tv_sec: time(nil) - secondsAgo, tv_nsec: 0)]
        #expect(utimensat(AT_FDCWD, path, &times, 0) == 0)
    }

    @Test func thePreloadDirectoryImportsOnlyWhatChangedAndUnpinsWhatWent() async throws {
        let fixture = try RegistryFixture.get()
        let preload = try archiveDirectory(fixture)
        _ = try run("/usr/bin/skopeo", ["copy", "-q", "oci:\(fixture.layout):plain", "docker-archive:\(preload)/plain.tar:test/plain:1"])
        _ = try run("/bin/sh", ["-c", "head -c 5000 /dev/urandom > \(preload)/broken.tar.gz; echo notes > \(preload)/README"])
        let store = try ImageStore(stateDirectory: fixture.newStateDirectory())
        let preloader = ImagePreloader(store: store, directory: preload)

        // Just written: perhaps still being copied, so left for the next pass.
        #expect(await preloader.run() == [.settling(file: "broken.tar.gz"), .settling(file: "plain.tar")])
        age("\(preload)/plain.tar", secondsAgo: 60)
        age("\(preload)/broken.tar.gz", secondsAgo: 60)
        let first = await preloader.run()
        #expect(first.contains(.imported(file: "plain.tar", names: ["docker.io/test/plain:1"])), "\(first)")
        #expect(first.contains { if case .failed(file: "broken.tar.gz", _) = $0 { return true } else { return false } }, "\(first)")
        #expect(first.count == 2, "README is not an archive: \(first)")
        #expect(try store.images().map(\.isPinned) == [true])

        // Nothing changed: nothing is read again, and the failing file is not retried until the
        // agent starts again.
        let second = await preloader.run()
        #expect(second == [.stillFailing(file: "broken.tar.gz"), .unchanged(file: "plain.tar")], "\(second)")
        let restarted = await preloader.run(afterStart: true)
        #expect(restarted.contains { if case .failed(file: "broken.tar.gz", _) = $0 { return true } else { return false } }, "\(restarted)")

        // An import cut short three times (the agent died in it) is not begun again, even after a start.
        var state = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: store.root + "/preload.json"))) as! [String: Any]
        var files = state["files"] as! [String: Any]
        var broken = files["broken.tar.gz"] as! [String: Any]
        broken["interrupted"] = 3
        files["broken.tar.gz"] = broken
        state["files"] = files
        try JSONSerialization.data(withJSONObject: state).write(to: URL(fileURLWithPath: store.root + "/preload.json"))
        #expect(await preloader.run(afterStart: true).contains(.stillFailing(file: "broken.tar.gz")))

        // An image removed from the store comes back; a changed file is imported again.
        let id = try #require(try store.images().first?.id)
        _ = try store.remove(id.description)
        let afterRemoval = await preloader.run()
        #expect(afterRemoval.contains(.imported(file: "plain.tar", names: ["docker.io/test/plain:1"])), "\(afterRemoval)")
        age("\(preload)/plain.tar", secondsAgo: 120)
        let afterChange = await preloader.run()
        #expect(afterChange.contains(.imported(file: "plain.tar", names: ["docker.io/test/plain:1"])), "\(afterChange)")

        // A file others may write is refused; a missing directory (a card not mounted) changes nothing.
        #expect(chmod("\(preload)/plain.tar", 0o666) == 0)
        #expect(await preloader.run().contains(.refused(file: "plain.tar", reason: "is writable by group or others (mode 666)")))
        #expect(chmod("\(preload)/plain.tar", 0o644) == 0)
        #expect(await ImagePreloader(store: store, directory: preload + "-not-mounted").run().isEmpty)
        #expect(try store.images().map(\.isPinned) == [true])

        // The archive goes: its image stays but is no longer pinned.
        try FileManager.default.removeItem(atPath: "\(preload)/plain.tar")
        #expect(await preloader.run().contains(.removed(file: "plain.tar")))
        #expect(try store.images().map(\.isPinned) == [false])
    }

    /// An archive with a good image and one for another platform: the good one is in and
    /// reported, the other named as failed.
    @Test func aPartlyFailedArchiveKeepsAndReportsWhatWorked() throws {
        let fixture = try RegistryFixture.get()
        let archives = try archiveDirectory(fixture)
        _ = try run("/usr/bin/skopeo", ["copy", "-q", "oci:\(fixture.layout):plain", "oci:\(archives)/layout:docker.io/test/plain:1"])
        _ = try run("/usr/bin/skopeo", ["copy", "-q", "--all", "oci:\(fixture.layout):armonly", "oci:\(archives)/layout:docker.io/test/armonly:1"])
        _ = try run("/bin/tar", ["-C", "\(archives)/layout", "-cf", "\(archives)/two.tar", "."])
        let root = fixture.newStateDirectory()
        let result = try importArchives(fixture, root: root, ["\(archives)/two.tar"])
        #expect(result.status != 0)
        #expect(result.output.contains("Imported docker.io/test/plain:1"), "\(result.output)")
        #expect(result.output.contains("docker.io/test/armonly:1: no image for"), "\(result.output)")
        #expect(try fixture.records(root: root).compactMap { $0["names"] as? [String] } == [["docker.io/test/plain:1"]])
    }

    /// An archive gets nothing of the store it does not hold itself, and moving a tag is said.
    @Test func anArchiveCannotReachContentItDoesNotHold() throws {
        let fixture = try RegistryFixture.get()
        let archives = try archiveDirectory(fixture)
        let root = fixture.newStateDirectory()
        #expect(try fixture.pull("plain", root: root).status == 0)
        let pulled = try #require(try fixture.records(root: root).first)
        let manifest = try #require(pulled["manifestDigest"] as? String)
        // Only an index naming the private image's manifest by digest.
        let index = #"{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"\#(manifest)","size":1000,"annotations":{"org.opencontainers.image.ref.name":"docker.io/evil/copy:1"}}]}"#
        try FileManager.default.createDirectory(atPath: "\(archives)/only-index", withIntermediateDirectories: true)
        try index.write(toFile: "\(archives)/only-index/index.json", atomically: true, encoding: .utf8)
        _ = try run("/bin/tar", ["-C", "\(archives)/only-index", "-cf", "\(archives)/only-index.tar", "index.json"])
        let stolen = try importArchives(fixture, root: root, ["\(archives)/only-index.tar"])
        #expect(stolen.status != 0)
        #expect(stolen.output.contains("has no manifest \(manifest)"), "\(stolen.output)")
        #expect(try fixture.records(root: root).count == 1)

        // An archive naming the pulled tag for other content: imported, and the move is said.
        let tag = "\(fixture.open)/test/plain:1"
        _ = try run("/usr/bin/skopeo", ["copy", "-q", "oci:\(fixture.layout):zstd", "oci-archive:\(archives)/other.tar:\(tag)"])
        let moved = try importArchives(fixture, root: root, ["\(archives)/other.tar"])
        #expect(moved.status == 0, "\(moved.output)")
        #expect(moved.output.contains("the tag \(tag) (was image \((pulled["id"] as? String ?? "").dropFirst(7).prefix(12))) now names the imported image"), "\(moved.output)")
    }

    /// Writes the crafted archives: argv[1] the directory, argv[2] the test layout (for real
    /// blobs), argv[3] a path outside that no entry may create.
    static let craftArchives = #"""
import hashlib, io, json, os, sys, tarfile
out, layout, escape = sys.argv[1], sys.argv[2], sys.argv[3]

def entry(t, name, data=b"", kind=tarfile.REGTYPE, link=""):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    t.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)

def sha(data):
    return hashlib.sha256(data).hexdigest()

def archive(name, build):
    with tarfile.open(os.path.join(out, name), "w") as t:
        build(t)

def index(manifests):
    return json.dumps({"schemaVersion": 2, "manifests": manifests}).encode()

# A blob whose content is not what its name says.
def wrong_blob(t):
    entry(t, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
    entry(t, "blobs/sha256/" + sha(b"claimed"), b"actual")
archive("wrong-blob.tar", wrong_blob)

# Names climbing out of the archive, an absolute name, and a manifest that is a link to a host file.
def links_outside(t):
    entry(t, "../../../../../../.." + escape, b"climbed")
    entry(t, "/iotkube-archive-absolute", b"absolute")
    target = sha(open("/etc/hostname", "rb").read()) if os.path.exists("/etc/hostname") else "0" * 64
    entry(t, "blobs/sha256/" + target, kind=tarfile.SYMTYPE, link="/etc/hostname")
    entry(t, "index.json", index([{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:" + target, "size": 10,
                                   "annotations": {"org.opencontainers.image.ref.name": "docker.io/test/evil:1"}}]))
archive("links-outside.tar", links_outside)

# A real archive cut in the middle of a blob.
def full_archive(t):
    blobs = os.path.join(layout, "blobs", "sha256")
    for name in sorted(os.listdir(blobs))[:3]:
        data = open(os.path.join(blobs, name), "rb").read()
        entry(t, "blobs/sha256/" + name, data)
buffer = io.BytesIO()
with tarfile.open(fileobj=buffer, mode="w") as t:
    full_archive(t)
    entry(t, "blobs/sha256/" + sha(b"x" * 100000), b"x" * 100000)
data = buffer.getvalue()
open(os.path.join(out, "truncated.tar"), "wb").write(data[:len(data) - 60000])

open(os.path.join(out, "not-a-tar.tar"), "wb").write(b"this is not an archive at all\n" * 100)

# A manifest whose index entry declares another size.
def lying_size(t):
    manifest = b"{}"
    entry(t, "blobs/sha256/" + sha(manifest), manifest)
    entry(t, "index.json", index([{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:" + sha(manifest), "size": 0,
                                   "annotations": {"org.opencontainers.image.ref.name": "docker.io/test/lying:1"}}]))
archive("lying-size.tar", lying_size)

def unnamed(t):
    manifest = b"{}"
    entry(t, "blobs/sha256/" + sha(manifest), manifest)
    entry(t, "index.json", index([{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:" + sha(manifest), "size": 2,
                                   "annotations": {"org.opencontainers.image.ref.name": "latest"}}]))
archive("unnamed.tar", unnamed)

archive("bad-json.tar", lambda t: entry(t, "index.json", b'{"manifests": [ {"digest": 12'))
archive("no-index.tar", lambda t: entry(t, "blobs/sha256/" + sha(b"lonely"), b"lonely"))

def docker_missing_layer(t):
    config = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
    entry(t, sha(config) + ".json", config)
    entry(t, "manifest.json", json.dumps([{"Config": sha(config) + ".json", "RepoTags": ["test/missing:1"], "Layers": ["missing/layer.tar"]}]).encode())
archive("docker-missing-layer.tar", docker_missing_layer)

def link_loop(t):
    entry(t, "loop-a", kind=tarfile.SYMTYPE, link="loop-b")
    entry(t, "loop-b", kind=tarfile.SYMTYPE, link="loop-a")
    entry(t, "manifest.json", json.dumps([{"Config": "loop-a", "RepoTags": ["test/loop:1"], "Layers": []}]).encode())
archive("link-loop.tar", link_loop)

# Raw headers Python's tarfile would not write: a PAX record whose length overflows, an empty
# PAX mtime, a GNU long name longer than PATH_MAX.
def header(name, kind, size):
    block = bytearray(512)
    block[0:len(name)] = name
    block[100:108] = b"0000644\0"
    block[108:116] = b"0000000\0"
    block[116:124] = b"0000000\0"
    block[124:136] = b"%011o\0" % size
    block[136:148] = b"%011o\0" % 0
    block[156:157] = kind
    block[257:263] = b"ustar\0"
    block[263:265] = b"00"
    block[148:156] = b"        "
    block[148:156] = b"%06o\0 " % sum(block)
    return bytes(block)

def padded(data):
    return data + bytes((512 - len(data) % 512) % 512)

def record(key, value):
    body = b" " + key + b"=" + value + b"\n"
    length = len(body) + 1
    while len(str(length)) + len(body) != length:
        length += 1
    return str(length).encode() + body

def raw(name, blocks):
    open(os.path.join(out, name), "wb").write(b"".join(blocks) + bytes(1024))

overflow = record(b"path", b"a") + b"9223372036854775807 path=b\n"
raw("pax-overflow.tar", [header(b"pax", b"x", len(overflow)), padded(overflow), header(b"file", b"0", 0)])
empty_mtime = record(b"mtime", b".") + record(b"uid", b"0")
raw("pax-empty-mtime.tar", [header(b"pax", b"x", len(empty_mtime)), padded(empty_mtime), header(b"file", b"0", 0)])
long_name = b"n" * 5000
raw("long-name.tar", [header(b"././@LongLink", b"L", len(long_name)), padded(long_name), header(b"file", b"0", 0)])
"""#
}
