import Foundation
import IotkubeTestSupport
import OCI
import Runtime
import Testing

/// Real containers from the built-in runtime, checked from inside: the default capability set,
/// no_new_privs, seccomp, refused privileged operations, an invisible host.
@Suite(.ownThread, .enabled(if: RuntimeFixture.ready, "needs root (namespaces, mounts, cgroups), busybox-static and gcc"))
struct RuntimeSecurityTests {
    @Test func runPropagatesExitCodeAndOutput() throws {
        let bundle = try RuntimeFixture.bundle(["sh", "-c", "echo to-stdout; echo to-stderr >&2; exit 3"])
        let result = try RuntimeFixture.runtime(RuntimeFixture.stateRoot(), ["run", "--bundle", bundle, "exit-code"])
        #expect(result.status == 3)
        #expect(result.output.contains("to-stdout") && result.output.contains("to-stderr"))
    }

    @Test func defaultCapabilitiesNoNewPrivsAndSeccomp() throws {
        let bundle = try RuntimeFixture.bundle(["sh", "-c", "grep -E '^(CapEff|CapPrm|CapBnd|CapInh|CapAmb|NoNewPrivs|Seccomp):' /proc/self/status"])
        let result = try RuntimeFixture.runtime(RuntimeFixture.stateRoot(), ["run", "--bundle", bundle, "caps"])
        #expect(result.status == 0, "\(result.output)")
        let expected = try Capabilities.mask(Capabilities.defaultSet, field: "test")
        let hex = String(format: "%016llx", expected)
        for field in ["CapEff", "CapPrm", "CapBnd"] {
            #expect(result.output.contains("\(field):\t\(hex)"), "\(field) in \(result.output)")
        }
        #expect(result.output.contains("CapInh:\t0000000000000000"))
        #expect(result.output.contains("CapAmb:\t0000000000000000"))
        #expect(result.output.contains("NoNewPrivs:\t1"))
        #expect(result.output.contains("Seccomp:\t2"))
    }

    @Test func privilegedOperationsAreRefused() throws {
        let bundle = try RuntimeFixture.bundle(["/bin/probe"])
        let result = try RuntimeFixture.runtime(RuntimeFixture.stateRoot(), ["run", "--bundle", bundle, "probe"])
        #expect(result.status == 0, "\(result.output)")
        let expectations = [
            "mount=EPERM", "unshare=EPERM", "ptrace=EPERM", "keyctl=EPERM", "rawsocket=EPERM", "init_module=EPERM",
            "procsys=EROFS", "sethostname=EPERM", "mknod_block=EPERM", "setns=EPERM",
        ]
        for expectation in expectations {
            #expect(result.output.contains(expectation), "\(expectation) in \(result.output)")
        }
    }

    @Test func theHostIsInvisible() throws {
        let marker = "iotkube-host-marker-\(UUID().uuidString)"
        FileManager.default.createFile(atPath: "/tmp/\(marker)", contents: Data("host".utf8))
        defer { try? FileManager.default.removeItem(atPath: "/tmp/\(marker)") }
        let script = """
            echo pids=$(ls -d /proc/[0-9]* | wc -l); echo init=$(cat /proc/1/comm); \
            cat /proc/1/root/tmp/\(marker) 2>/dev/null && echo LEAK; \
            for p in /proc/[0-9]*; do cat $p/root/tmp/\(marker) 2>/dev/null && echo LEAK; done; \
            cd / && cd .. && ls / | grep -c \(marker); echo hostname=$(hostname)
            """
        let bundle = try RuntimeFixture.bundle(["sh", "-c", script]) { $0.hostname = "boxed" }
        let result = try RuntimeFixture.runtime(RuntimeFixture.stateRoot(), ["run", "--bundle", bundle, "host"])
        #expect(result.output.contains("init=sh"), "\(result.output)")
        #expect(!result.output.contains("LEAK"))
        #expect(result.output.contains("hostname=boxed"))
        let pids = result.output.split(separator: "\n").first { $0.hasPrefix("pids=") }.flatMap { Int($0.dropFirst(5)) } ?? 99
        #expect(pids <= 4, "only the container's processes: \(result.output)")
    }

    /// An image whose `/dev` is a link to an absolute host path: the runtime's /dev links
    /// (fd, stdin, ptmx, …) are made inside the root, never in that host directory.
    @Test func anImagesDevLinkDoesNotLeadTheRuntimeOntoTheHost() throws {
        let hostDirectory = NSTemporaryDirectory() + "iotkube-host-dev-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: hostDirectory, withIntermediateDirectories: true)
        let rootfs = NSTemporaryDirectory() + "iotkube-devlink-rootfs-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: hostDirectory); try? FileManager.default.removeItem(atPath: rootfs) }
        let copied = try ServerProcess.run("/bin/cp", ["-a", try RuntimeFixture.rootfs.get(), rootfs])
        try #require(copied.status == 0, "\(copied.output)")
        try FileManager.default.removeItem(atPath: rootfs + "/dev")
        try FileManager.default.createSymbolicLink(atPath: rootfs + "/dev", withDestinationPath: hostDirectory)
        // The same path exists inside the image, so the /dev mount (resolved inside the root) succeeds.
        try FileManager.default.createDirectory(atPath: rootfs + hostDirectory, withIntermediateDirectories: true)
        let bundle = try RuntimeFixture.bundle(["true"]) { $0.root = RuntimeSpec.Root(path: rootfs, readonly: false) }
        let run = try RuntimeFixture.runtime(RuntimeFixture.stateRoot(), ["run", "--bundle", bundle, "devlink-\(UUID().uuidString.prefix(6))"])
        #expect(try FileManager.default.contentsOfDirectory(atPath: hostDirectory) == [], "the runtime wrote into the host directory: \(run.output)")
    }

    @Test func missingCommandExitsWith127AndSaysWhy() throws {
        let bundle = try RuntimeFixture.bundle(["/no/such/program", "arg"])
        let result = try RuntimeFixture.runtime(RuntimeFixture.stateRoot(), ["run", "--bundle", bundle, "missing"])
        #expect(result.status == 127)
        #expect(result.output.contains("exec /no/such/program: No such file or directory"), "\(result.output)")
    }

    @Test func orphansAndZombiesDoNotOutliveTheContainer() throws {
        let tag = "7.\(Int.random(in: 100...999))"
        let bundle = try RuntimeFixture.bundle(["sh", "-c", "(sleep \(tag) &); sleep \(tag) & exit 0"])
        let result = try RuntimeFixture.runtime(RuntimeFixture.stateRoot(), ["run", "--bundle", bundle, "orphans"])
        #expect(result.status == 0, "\(result.output)")
        let left = try ServerProcess.run("/usr/bin/pgrep", ["-f", "sleep \(tag)"])
        #expect(left.output.isEmpty, "processes left: \(left.output)")
    }
}
