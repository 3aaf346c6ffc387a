import Foundation
import IotkubeTestSupport
import OCI
@testable import Runtime
import Testing

/// cgroup managers: v2 on a directory of plain files (mount point injected), v1 for real on
/// hosts that have it (this build host is hybrid); the v2 kernel behaviour runs in the VM tests.
@Suite(.ownThread) struct CgroupManagerTests {
    @Test func v2WritesLimitsAndEnablesControllers() throws {
        let root = NSTemporaryDirectory() + "iotkube-cgroup2-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        try "cpuset cpu io memory pids\n".write(toFile: root + "/cgroup.controllers", atomically: true, encoding: .utf8)
        try "".write(toFile: root + "/cgroup.subtree_control", atomically: true, encoding: .utf8)
        // Pre-create the files a kernel would provide in the new groups.
        let manager = CgroupV2Manager(root: root)
        var resources = RuntimeSpec.Resources()
        resources.memory = .init(limit: 64 << 20)
        var cpu = RuntimeSpec.Resources.CPU()
        cpu.quota = 50_000
        cpu.period = 100_000
        cpu.shares = 512
        resources.cpu = cpu
        resources.pids = .init(limit: 32)
        for directory in ["pods", "pods/box"] {
            try FileManager.default.createDirectory(atPath: "\(root)/\(directory)", withIntermediateDirectories: true)
            for file in ["cgroup.subtree_control", "memory.max", "cpu.max", "cpu.weight", "pids.max", "cgroup.procs"] {
                FileManager.default.createFile(atPath: "\(root)/\(directory)/\(file)", contents: Data())
            }
        }
        let procs = try manager.create("pods/box", resources: resources)
        #expect(procs == ["\(root)/pods/box/cgroup.procs"])
        func read(_ file: String) throws -> String { try String(contentsOfFile: "\(root)/\(file)", encoding: .utf8) }
        #expect(try read("pods/box/memory.max") == "67108864")
        #expect(try read("pods/box/cpu.max") == "50000 100000")
        #expect(try read("pods/box/cpu.weight") == "20")
        #expect(try read("pods/box/pids.max") == "32")
        // Enabled on every ancestor of the leaf, not on the leaf itself.
        #expect(try read("cgroup.subtree_control") == "+cpu +memory +pids +io +cpuset")
        #expect(try read("pods/cgroup.subtree_control") == "+cpu +memory +pids +io +cpuset")
        #expect(try read("pods/box/cgroup.subtree_control") == "")
    }

    @Test func v2StatisticsFromTheKernelFiles() throws {
        let root = NSTemporaryDirectory() + "iotkube-cgroup2-\(UUID().uuidString)"
        let box = root + "/pods/box"
        try FileManager.default.createDirectory(atPath: box, withIntermediateDirectories: true)
        let files = [
            "memory.current": "10485760\n", "memory.stat": "anon 4194304\nfile 6291456\ninactive_file 4194304\nactive_file 2097152\n",
            "memory.events": "low 0\nhigh 0\nmax 7\noom 2\noom_kill 2\n", "cpu.stat": "usage_usec 1234567\nuser_usec 1000000\nsystem_usec 234567\n",
            "pids.current": "3\n", "io.stat": "8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n254:0 rbytes=100 wbytes=0 rios=1 wios=0 dbytes=0 dios=0\n",
        ]
        for (name, content) in files { try content.write(toFile: box + "/" + name, atomically: true, encoding: .utf8) }
        let statistics = CgroupV2Manager(root: root).statistics("pods/box")
        #expect(statistics == CgroupStatistics(
            memoryBytes: 10_485_760, memoryWorkingSetBytes: 6_291_456, ioReadBytes: 4196, ioWriteBytes: 8192,
            cpuUsageMicroseconds: 1_234_567, pids: 3, oomKills: 2))
        #expect(CgroupStatistics.ioBytes(v1: "8:0 Read 4096\n8:0 Write 512\n8:0 Sync 10\n8:16 Read 4\nTotal 4612\n") == (4100, 512))
        #expect(CgroupStatistics.workingSet(usage: 100, inactiveFile: 300) == 0)
    }

    @Test(arguments: [(2 as UInt64, 1 as UInt64), (1024, 39), (262_144, 10_000), (512, 20)])
    func sharesToWeight(_ shares: UInt64, _ weight: UInt64) {
        #expect(CgroupV2Manager.weight(fromShares: shares) == weight)
    }

    @Test func missingControllerSaysHowToEnableIt() throws {
        let root = NSTemporaryDirectory() + "iotkube-cgroup2-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        try "cpu pids\n".write(toFile: root + "/cgroup.controllers", atomically: true, encoding: .utf8)
        var resources = RuntimeSpec.Resources()
        resources.memory = .init(limit: 1 << 20)
        #expect {
            _ = try CgroupV2Manager(root: root).create("x", resources: resources)
        } throws: { error in
            "\(error)".contains("the memory cgroup controller is not available") && "\(error)".contains("cgroup_enable=memory")
        }
        #expect {
            _ = try CgroupV1Manager(hierarchies: ["cpu": "/nonexistent"]).create("x", resources: resources)
        } throws: { error in
            "\(error)".contains("the memory cgroup controller is not available")
        }
    }

    @Test func v1HierarchiesFromMountinfo() {
        let mountinfo = """
            30 23 0:26 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
            31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw
            34 30 0:30 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,memory
            35 30 0:31 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:16 - cgroup cgroup rw,cpu,cpuacct
            36 30 0:32 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:17 - cgroup cgroup rw,pids
            """
        let manager = CgroupV1Manager(mountinfo: mountinfo)
        #expect(manager.hierarchies == ["memory": "/sys/fs/cgroup/memory", "cpu": "/sys/fs/cgroup/cpu,cpuacct",
                                        "cpuacct": "/sys/fs/cgroup/cpu,cpuacct", "pids": "/sys/fs/cgroup/pids"])
        #expect(manager.placements.map(\.1) == ["/sys/fs/cgroup/memory", "/sys/fs/cgroup/cpu,cpuacct", "/sys/fs/cgroup/pids"])
    }
}

/// Limits enforced by the kernel on this host's v1 hierarchies.
@Suite(.ownThread, .enabled(if: RuntimeFixture.ready && !(CgroupDetection.detect() is CgroupV2Manager), "needs root and cgroup v1 (v2 runs in the VM tests)"))
struct CgroupV1LimitTests {
    @Test func pidsLimitStopsAForkBomb() throws {
        let cgroup = "/iotkube-test/\(UUID().uuidString)"
        let bundle = try RuntimeFixture.bundle(["sh", "-c", "for i in $(seq 1 30); do sleep 5 & done 2>&1 | head -1; wait; cat /proc/self/cgroup | grep pids"]) { spec in
            spec.linux?.resources = { var r = RuntimeSpec.Resources(); r.pids = .init(limit: 8); return r }()
            spec.linux?.cgroupsPath = cgroup
        }
        let root = RuntimeFixture.stateRoot()
        #expect(try RuntimeFixture.runtime(root, ["create", "--bundle", bundle, "--container-log", bundle + "/log", "bomb"]).status == 0)
        let pidsDirectory = "/sys/fs/cgroup/pids\(cgroup)"
        #expect(try String(contentsOfFile: pidsDirectory + "/pids.max", encoding: .utf8) == "8\n")
        #expect(try RuntimeFixture.runtime(root, ["start", "bomb"]).status == 0)
        for _ in 0..<400 where (try? RuntimeFixture.state(root, "bomb"))?["status"] as? String != "stopped" { Thread.sleep(forTimeInterval: 0.05) }
        let log = try String(contentsOfFile: bundle + "/log", encoding: .utf8)
        #expect(log.contains("can't fork") || log.contains("Resource temporarily unavailable"), "\(log)")
        #expect(try RuntimeFixture.runtime(root, ["delete", "bomb"]).status == 0)
        #expect(!FileManager.default.fileExists(atPath: pidsDirectory), "cgroup removed after delete")
    }

    @Test func memoryLimitOOMKillIsReported() throws {
        let bundle = try RuntimeFixture.bundle(["sh", "-c", "x=$(head -c 100000000 /dev/zero | tr '\\0' x); echo survived"]) { spec in
            spec.linux?.resources = { var r = RuntimeSpec.Resources(); r.memory = .init(limit: 16 << 20); r.memory?.swap = 16 << 20; return r }()
        }
        let root = RuntimeFixture.stateRoot()
        let result = try RuntimeFixture.runtime(root, ["run", "--keep", "--bundle", bundle, "oom"])
        #expect(result.status == 137, "\(result.output)")
        #expect(!result.output.contains("survived"))
        let runtime = BuiltinRuntime(root: root, helper: RuntimeFixture.agent)
        #expect(runtime.exitRecord(id: "oom")?.oomKilled == true)
        try runtime.delete(id: "oom")
    }
}
