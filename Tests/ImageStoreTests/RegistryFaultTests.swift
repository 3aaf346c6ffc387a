import Foundation
import ImageStore
import IotkubeTestSupport
import Synchronization
import Testing

/// A registry that misbehaves (the fault proxy in front of the real one), one that is down,
/// and a disk that fills up: clear errors, nothing half-done used, resumable downloads resumed.
@Suite(.ownThread, .enabled(if: RegistryFixture.toolsPresent, "needs docker-registry, skopeo, umoci, htpasswd, openssl, zstd, busybox-static, python3"))
struct RegistryFaultTests {
    func pullThroughProxy(_ fixture: RegistryFixture, _ fault: String, _ tag: String, root: String, extra: [String] = []) throws -> (status: Int32, output: String) {
        let reference = "\(fixture.faulty)/fault/\(fault)/test/\(tag):1"
        return try fixture.agent(["pull", "--root", root, "--config", fixture.directory + "/no-agent.yaml",
                                  "--insecure-registry", fixture.faulty, "--unpack-mode", "flattened"] + extra + [reference])
    }

    @Test func truncatedDownloadIsKeptAndResumedWithARange() throws {
        let fixture = try RegistryFixture.get()
        let root = fixture.newStateDirectory()
        let cut = try pullThroughProxy(fixture, "truncate", "busybox", root: root)
        #expect(cut.status != 0)
        #expect(cut.output.contains("download truncated at"), "\(cut.output)")
        #expect(try fixture.records(root: root).isEmpty)
        let partials = try FileManager.default.contentsOfDirectory(atPath: root + "/images/ingest")
        #expect(partials.count == 1 && partials[0].hasSuffix(".partial"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: root + "/images/rootfs").isEmpty)
        // The same blob from the honest registry: only the rest is fetched.
        let resumed = try fixture.pull("busybox", root: root, extra: ["--unpack-mode", "flattened"])
        #expect(resumed.status == 0, "\(resumed.output)")
        #expect(resumed.output.contains(": resuming "), "\(resumed.output)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: root + "/images/ingest").isEmpty)
    }

    /// A pull cancelled in the middle of a blob (its pod was deleted) stops at once, keeps what
    /// arrived, and the next pull of the image fetches only the rest.
    @Test func aCancelledPullKeepsItsPartialBlobForTheNextPull() async throws {
        let fixture = try RegistryFixture.get()
        let root = fixture.newStateDirectory()
        let store = try ImageStore(stateDirectory: root, unpackMode: .flattened)
        var registry = RegistryConfiguration()
        registry.insecureRegistries = [fixture.faulty, fixture.open]
        let stalled = try ImageReference(parsing: "\(fixture.faulty)/fault/stall/test/busybox:1")
        let pull = Task { try await store.pull(stalled, registry: registry) }
        let ingest = root + "/images/ingest"
        func partialBytes() -> Int {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: ingest)) ?? []
            return names.filter { $0.hasSuffix(".partial") }.reduce(0) { total, name in
                total + ((try? FileManager.default.attributesOfItem(atPath: ingest + "/" + name)[.size] as? Int) ?? 0)
            }
        }
        for _ in 0..<600 where partialBytes() == 0 { try await Task.sleep(for: .milliseconds(50)) }
        let arrived = partialBytes()
        #expect(arrived > 0, "half a blob arrived before the stall")
        let cancelled = ContinuousClock.now
        pull.cancel()
        await #expect(throws: (any Error).self) { try await pull.value }
        // Not the registry timeout (30 s): the cancellation ended the stalled read.
        #expect(ContinuousClock.now - cancelled < .seconds(20))
        #expect(partialBytes() >= arrived, "what arrived is kept")
        let messages = ProgressLines()
        let resumed = try await store.pull(try ImageReference(parsing: "\(fixture.open)/test/busybox:1"), registry: registry) { line in
            messages.lines.withLock { $0.append(line) }
        }
        #expect(resumed.image.names.contains("\(fixture.open)/test/busybox:1"))
        let said = messages.lines.withLock { $0 }
        #expect(said.contains { $0.contains(": resuming ") }, "\(said)")
        #expect(partialBytes() == 0)
    }

    @Test func registryIgnoringTheRangeRestartsCleanly() throws {
        let fixture = try RegistryFixture.get()
        let root = fixture.newStateDirectory()
        #expect(try pullThroughProxy(fixture, "truncate", "busybox", root: root).status != 0)
        let whole = try pullThroughProxy(fixture, "norange", "busybox", root: root)
        #expect(whole.status == 0, "\(whole.output)")
        #expect(whole.output.contains("resuming"))
        #expect(try fixture.records(root: root).count == 1)
    }

    @Test func corruptBlobIsDiscarded() throws {
        let fixture = try RegistryFixture.get()
        let root = fixture.newStateDirectory()
        let result = try pullThroughProxy(fixture, "corrupt", "busybox", root: root)
        #expect(result.status != 0)
        #expect(result.output.contains("content does not match its digest"), "\(result.output)")
        #expect(result.output.contains("discarded"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: root + "/images/ingest").isEmpty)
        #expect(try FileManager.default.contentsOfDirectory(atPath: root + "/images/rootfs").isEmpty)
        #expect(try fixture.records(root: root).isEmpty)
    }

    @Test func manifestLargerThanDeclaredIsRefused() throws {
        let fixture = try RegistryFixture.get()
        let root = fixture.newStateDirectory()
        let result = try pullThroughProxy(fixture, "bigmanifest", "multi", root: root)
        #expect(result.status != 0)
        #expect(result.output.contains("manifest larger than its declared"), "\(result.output)")
        #expect(try fixture.records(root: root).isEmpty)
    }

    @Test func blobLargerThanDeclaredIsRefused() throws {
        let fixture = try RegistryFixture.get()
        let root = fixture.newStateDirectory()
        let result = try pullThroughProxy(fixture, "bigblob", "busybox", root: root)
        #expect(result.status != 0)
        #expect(result.output.contains("the registry sent more than the declared"), "\(result.output)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: root + "/images/ingest").isEmpty)
        #expect(try FileManager.default.contentsOfDirectory(atPath: root + "/images/blobs/sha256").isEmpty)
        #expect(try fixture.records(root: root).isEmpty)
    }

    @Test func hangingRegistryTimesOut() throws {
        let fixture = try RegistryFixture.get()
        let root = fixture.newStateDirectory()
        let started = Date()
        let result = try pullThroughProxy(fixture, "hang", "busybox", root: root, extra: ["--timeout", "2"])
        #expect(result.status != 0)
        #expect(result.output.contains("no data for 2 s (registry hung)"), "\(result.output)")
        #expect(Date().timeIntervalSince(started) < 60)
    }

    @Test func registryThatIsDown() throws {
        let fixture = try RegistryFixture.get()
        let port = try ServerProcess.freePort()
        let result = try fixture.agent(["pull", "--root", fixture.newStateDirectory(), "--config", fixture.directory + "/no-agent.yaml",
                                        "--insecure-registry", "127.0.0.1:\(port)", "127.0.0.1:\(port)/test/busybox:1"])
        #expect(result.status != 0)
        #expect(result.output.contains("cannot connect to 127.0.0.1:\(port)"), "\(result.output)")
    }

    /// A registry on this machine that does not speak TLS is used over plain HTTP without any
    /// setting (as Docker and containerd do); elsewhere, the failed handshake is a sentence that
    /// names the registry and the setting, not BoringSSL's error dump.
    @Test func aLoopbackRegistryWithoutTLSWorksAndOthersSayWhatToSet() throws {
        let fixture = try RegistryFixture.get()
        let loopback = try fixture.agent(["pull", "--root", fixture.newStateDirectory(), "--config", fixture.directory + "/no-agent.yaml",
                                          "--unpack-mode", "flattened", "\(fixture.open)/test/busybox:1"])
        #expect(loopback.status == 0, "\(loopback.output)")
        let addresses = try ServerProcess.run("/bin/sh", ["-c", "ip -4 -o addr show scope global | awk '{print $4}' | cut -d/ -f1 | head -1"])
        let address = addresses.output.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !address.isEmpty else {
            print("skipped the non-loopback half: this machine has no global IPv4 address")
            return
        }
        // A plain-HTTP server on the machine's own address, which is not loopback.
        let port = try ServerProcess.freePort()
        let server = try SpawnedProcess("/usr/bin/python3", ["-m", "http.server", "--bind", address, String(port)], output: .null)
        defer { server.terminate(); server.waitUntilExit() }
        for _ in 0..<50 where (try? ServerProcess.run("/usr/bin/curl", ["-sf", "-o", "/dev/null", "http://\(address):\(port)/"]).status) != 0 {
            Thread.sleep(forTimeInterval: 0.1)
        }
        let elsewhere = try fixture.agent(["pull", "--root", fixture.newStateDirectory(), "--config", fixture.directory + "/no-agent.yaml",
                                           "\(address):\(port)/test/busybox:1"])
        #expect(elsewhere.status != 0)
        #expect(elsewhere.output.contains("\(address):\(port) does not speak TLS") && elsewhere.output.contains("list it in insecureRegistries"), "\(elsewhere.output)")
        #expect(!elsewhere.output.contains("BoringSSLError"), "\(elsewhere.output)")
    }

    @Test func unknownImageAndTag() throws {
        let fixture = try RegistryFixture.get()
        let root = fixture.newStateDirectory()
        let result = try fixture.agent(["pull", "--root", root, "--config", fixture.directory + "/no-agent.yaml",
                                        "--insecure-registry", fixture.open, "\(fixture.open)/test/busybox:nope"])
        #expect(result.status != 0)
        #expect(result.output.contains("manifest nope not found"), "\(result.output)")
    }

    @Test func diskFullDuringPullLeavesNothing() throws {
        guard getuid() == 0 else {
            print("skipped: a small tmpfs for the disk-full case needs root")
            return
        }
        let fixture = try RegistryFixture.get()
        let root = fixture.newStateDirectory()
        // 1.5 MiB: the 1.1 MB compressed layer fits, its 2 MB of files do not.
        let script = """
            mount -t tmpfs -o size=1536k tmpfs "$1" && "$2" images pull --root "$1" --config /nonexistent --insecure-registry "$3" \
              --unpack-mode flattened "$3/test/busybox:1"; status=$?; \
            echo "ROOTFS=[$(ls -A "$1/images/rootfs")] STAGING=[$(ls -A "$1/images/staging")] DB=[$(cat "$1/images/images.json" 2>/dev/null)]"; exit $status
            """
        let result = try ServerProcess.run("/usr/bin/unshare", ["-m", "--propagation", "private", "/bin/sh", "-c", script, "sh", root, RegistryFixture.agent, fixture.open])
        #expect(result.status != 0)
        #expect(result.output.contains("disk full"), "\(result.output)")
        #expect(result.output.contains("ROOTFS=[] STAGING=[] DB=[]"), "\(result.output)")
    }
}

/// What a pull said about its progress.
final class ProgressLines: Sendable {
    let lines = Mutex<[String]>([])
}
