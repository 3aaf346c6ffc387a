import Foundation
import IotkubeTestSupport
import OCI
import Testing

/// What a container sees of cgroups (this host's v1 hierarchies; pure v2 runs in the VM tests):
/// its own cgroup as the root of its cgroup namespace, its own limits under /sys/fs/cgroup,
/// read-only, and nothing of the host's hierarchy.
@Suite(.ownThread, .enabled(if: RuntimeFixture.ready, "\(RuntimeFixture.reason)"))
struct CgroupViewTests {
    static let script = """
        cat /proc/self/cgroup
        echo limit=$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes)
        echo pids=$(cat /sys/fs/cgroup/pids/pids.max)
        mkdir /sys/fs/cgroup/memory/escape-$ESCAPE 2>/dev/null && echo MKDIR-WORKED
        echo 1 > /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null && echo LIMIT-WRITTEN
        ls /sys/fs/cgroup/memory | grep -c '^escape-' | sed 's/^/children=/'
        true
        """

    /// Runs the script with a 48 MiB memory limit and 40 pids; `change` alters the spec.
    static func run(_ name: String, escape: String, change: (inout RuntimeSpec) -> Void = { _ in }) throws -> String {
        let bundle = try RuntimeFixture.bundle(["sh", "-c", script]) { spec in
            spec.process?.env?.append("ESCAPE=\(escape)")
            var resources = RuntimeSpec.Resources()
            resources.memory = .init(limit: 48 << 20)
            resources.pids = .init(limit: 40)
            spec.linux?.resources = resources
            change(&spec)
        }
        let result = try RuntimeFixture.runtime(RuntimeFixture.stateRoot(), ["run", "--bundle", bundle, name])
        #expect(result.status == 0, "\(result.output)")
        return result.output
    }

    @Test func aContainerSeesItsOwnCgroupAsTheRootAndItsLimits() throws {
        let output = try Self.run("view", escape: UUID().uuidString)
        // Every hierarchy it was placed in reads "/" (it entered them before its namespace was made).
        for controller in ["memory", "pids", "cpu", "blkio"] where FileManager.default.fileExists(atPath: "/sys/fs/cgroup/\(controller)") {
            #expect(output.split(separator: "\n").contains { $0.hasSuffix(":\(controller):/") }, "\(controller): \(output)")
        }
        #expect(!output.contains("iotkube-test"), "the host's cgroup path shows: \(output)")
        #expect(output.contains("limit=\(48 << 20)\n"), "\(output)")
        #expect(output.contains("pids=40\n"), "\(output)")
        #expect(!output.contains("MKDIR-WORKED") && !output.contains("LIMIT-WRITTEN"), "the cgroup mount is writable: \(output)")
    }

    /// A container on the host's network (its sysfs is the host network's) gets the same view,
    /// and its root process can neither make a cgroup on the host nor change its own limit.
    @Test func aHostNetworkContainerGetsTheSameViewAndMakesNoHostCgroup() throws {
        let escape = UUID().uuidString
        defer { rmdir("/sys/fs/cgroup/memory/escape-\(escape)") }
        let output = try Self.run("hostnet", escape: escape) { spec in
            let namespaces = spec.linux?.namespaces?.filter { $0.type != "network" }
            spec.linux?.namespaces = namespaces
        }
        #expect(!output.contains("MKDIR-WORKED") && !output.contains("LIMIT-WRITTEN"), "\(output)")
        #expect(!FileManager.default.fileExists(atPath: "/sys/fs/cgroup/memory/escape-\(escape)"), "a host cgroup was made from the container")
        #expect(output.contains("limit=\(48 << 20)\n"), "\(output)")
    }

    /// A container given a writable cgroup mount (privileged pods get one) makes a cgroup below
    /// its own and moves a process there: deleting the container kills that process too and
    /// removes the whole tree.
    @Test func cgroupsAContainerMadeBelowItsOwnGoWithIt() throws {
        let marker = Int.random(in: 1_000_000...9_000_000)
        let bundle = try RuntimeFixture.bundle(["sh", "-c", "mkdir /sys/fs/cgroup/memory/below && (sleep \(marker) & echo $! > /sys/fs/cgroup/memory/below/cgroup.procs) && echo moved; sleep 300"]) { spec in
            spec.mounts = spec.mounts?.map { mount in
                guard mount.destination == "/sys/fs/cgroup" else { return mount }
                var writable = mount
                writable.options = mount.options?.filter { $0 != "ro" }
                return writable
            }
        }
        let spec = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: bundle + "/config.json"))) as? [String: Any]
        let cgroup = try #require((spec?["linux"] as? [String: Any])?["cgroupsPath"] as? String)
        let root = RuntimeFixture.stateRoot()
        #expect(try RuntimeFixture.runtime(root, ["create", "--bundle", bundle, "--container-log", bundle + "/out.log", "nester"]).status == 0)
        #expect(try RuntimeFixture.runtime(root, ["start", "nester"]).status == 0)
        for _ in 0..<100 where !((try? String(contentsOfFile: bundle + "/out.log", encoding: .utf8)) ?? "").contains("moved") { Thread.sleep(forTimeInterval: 0.05) }
        #expect(FileManager.default.fileExists(atPath: "/sys/fs/cgroup/memory\(cgroup)/below"))
        let started = Date()
        let deleted = try RuntimeFixture.runtime(root, ["delete", "--force", "nester"])
        #expect(deleted.status == 0, "\(deleted.output)")
        #expect(Date().timeIntervalSince(started) < 4, "the removal waited on a cgroup it could not remove")
        let left = try ServerProcess.run("/bin/sh", ["-c", "pgrep -f '^sleep \(marker)' || true"]).output
        if !left.isEmpty { _ = try? ServerProcess.run("/bin/sh", ["-c", "pkill -9 -f '^sleep \(marker)'"]) }
        #expect(left.isEmpty, "a process in a cgroup below the container's outlived it")
        #expect(!FileManager.default.fileExists(atPath: "/sys/fs/cgroup/memory\(cgroup)"), "the container's cgroup tree stayed")
    }

    @Test func aCgroupMountNeedsTheContainersOwnCgroupNamespace() throws {
        let bundle = try RuntimeFixture.bundle(["true"]) { spec in
            let namespaces = spec.linux?.namespaces?.filter { $0.type != "cgroup" }
            spec.linux?.namespaces = namespaces
        }
        let result = try RuntimeFixture.runtime(RuntimeFixture.stateRoot(), ["create", "--bundle", bundle, "shared"])
        #expect(result.status != 0 && result.output.contains("a cgroup mount needs a cgroup namespace of the container's own"), "\(result.output)")
    }
}
