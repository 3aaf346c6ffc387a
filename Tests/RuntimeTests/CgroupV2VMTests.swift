import Foundation
import IotkubeTestSupport
import OCI
import Runtime
import Testing

/// cgroup v2 as the agent's target boards have it (pure v2, systemd as PID 1), in a qemu VM: this
/// host's cgroups are hybrid. The built-in runtime's limits are checked by their effect on real
/// processes, not only by the files written.
@Suite(.ownThread, .heavy, .enabled(if: VirtualMachine.ready && RuntimeFixture.ready, "\(VirtualMachine.reason); \(RuntimeFixture.reason)"), .serialized)
struct CgroupV2VMTests {
    static let guestRootfs = "/var/lib/iotkube-vm-test/rootfs"

    /// Writes a bundle into the share (config.json only; the rootfs is the guest's copy).
    static func bundle(_ vm: VirtualMachine, _ name: String, _ args: [String], change: (inout RuntimeSpec) -> Void = { _ in }) throws {
        let host = try RuntimeFixture.bundle(args) { spec in
            spec.linux?.cgroupsPath = "/iotkube-test/\(name)"
            change(&spec)
        }
        var spec = try JSONDecoder().decode(RuntimeSpec.self, from: Data(contentsOf: URL(fileURLWithPath: host + "/config.json")))
        spec.root?.path = guestRootfs
        let directory = vm.share + "/bundles/" + name
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try JSONEncoder().encode(spec).write(to: URL(fileURLWithPath: directory + "/config.json"))
    }

    static func resources(_ change: (inout RuntimeSpec.Resources) -> Void) -> RuntimeSpec.Resources {
        var resources = RuntimeSpec.Resources()
        change(&resources)
        return resources
    }

    static func prepare(_ vm: VirtualMachine) throws {
        try vm.installAgent(RuntimeFixture.agent)
        let copied = try ServerProcess.run("/bin/cp", ["-a", try RuntimeFixture.rootfs.get(), vm.share + "/rootfs"])
        guard copied.status == 0 else { throw TestFailure("copying the rootfs: \(copied.output)") }
        try vm.check("mkdir -p \(guestRootfs) && cp -a rootfs/. \(guestRootfs)/")
    }

    @Test("memory.max OOM kill, cpu.max throttling, pids.max, the BPF device filter, cgroup.kill, journald")
    func limitsOnPureCgroupV2() async throws {
        let vm = try await VirtualMachine.make()
        try await onOwnThread { try Self.prepare(vm) }
        let facts = try await vm.checkAsync("stat -fc %T /sys/fs/cgroup; cat /sys/fs/cgroup/cgroup.controllers; ps -p 1 -o comm=")
        #expect(facts.contains("cgroup2fs") && facts.contains("memory") && facts.contains("systemd"), "\(facts)")
        let runtime = "iotkube-agent runtime --root /run/iotkube-vm-test"

        // memory.max: the process is OOM-killed, the runtime says so, memory.events counts it.
        try Self.bundle(vm, "oom", ["/bin/probe", "alloc", "256"]) { spec in
            spec.linux?.resources = Self.resources { $0.memory = .init(limit: 32 << 20); $0.memory?.swap = 32 << 20 }
        }
        let oom = try await vm.runAsync("\(runtime) run --keep -b bundles/oom oom; echo status=$?; cat /sys/fs/cgroup/iotkube-test/oom/memory.max /sys/fs/cgroup/iotkube-test/oom/memory.swap.max; grep oom_kill /sys/fs/cgroup/iotkube-test/oom/memory.events; \(runtime) delete oom")
        #expect(oom.output.contains("status=137"), "\(oom.output)")
        #expect(oom.output.contains("killed by the OOM killer"), "\(oom.output)")
        #expect(oom.output.contains("33554432\n0\n"), "memory.max and memory.swap.max: \(oom.output)")
        #expect(oom.output.contains("oom_kill 1"), "\(oom.output)")
        #expect(!oom.output.contains("allocated=100\n"), "the process got past the limit: \(oom.output)")

        // cpu.max: 20 % of one CPU. The process's own CPU time over wall time shows the throttling.
        try Self.bundle(vm, "cpu", ["/bin/probe", "spin", "3"]) { spec in
            spec.linux?.resources = Self.resources { $0.cpu = .init(); $0.cpu?.quota = 20_000; $0.cpu?.period = 100_000; $0.cpu?.shares = 512 }
        }
        let cpu = try await vm.checkAsync("\(runtime) run --keep -b bundles/cpu cpu; cat /sys/fs/cgroup/iotkube-test/cpu/cpu.max /sys/fs/cgroup/iotkube-test/cpu/cpu.weight; grep nr_throttled /sys/fs/cgroup/iotkube-test/cpu/cpu.stat; \(runtime) delete cpu")
        #expect(cpu.contains("20000 100000\n"), "\(cpu)")
        #expect(cpu.contains("\n20\n"), "cpu.weight from 512 shares: \(cpu)")
        let cpuMilliseconds = Self.number(after: "cpu_ms=", in: cpu), wallMilliseconds = Self.number(after: "wall_ms=", in: cpu)
        #expect(wallMilliseconds >= 3000 && Double(cpuMilliseconds) <= 0.35 * Double(wallMilliseconds), "throttled to 20 %: \(cpu)")
        #expect(Self.number(after: "nr_throttled ", in: cpu) > 0, "\(cpu)")

        // pids.max: 8 tasks in the cgroup, the probe itself being one.
        try Self.bundle(vm, "pids", ["/bin/probe", "forks", "20"]) { spec in
            spec.linux?.resources = Self.resources { $0.pids = .init(limit: 8) }
        }
        let pids = try await vm.checkAsync("\(runtime) run --keep -b bundles/pids pids; cat /sys/fs/cgroup/iotkube-test/pids/pids.max; grep max /sys/fs/cgroup/iotkube-test/pids/pids.events; \(runtime) delete pids")
        #expect(pids.contains("forked=7 failed=13 error=EAGAIN"), "\(pids)")
        #expect(pids.contains("8\nmax 13"), "\(pids)")

        // What the container sees: its own cgroup as "0::/" (the namespace was made after it
        // entered the cgroup) and its own limits under a read-only /sys/fs/cgroup.
        try Self.bundle(vm, "view", ["sh", "-c", "cat /proc/self/cgroup /sys/fs/cgroup/memory.max /sys/fs/cgroup/cpu.max; mkdir /sys/fs/cgroup/x 2>/dev/null && echo MKDIR-WORKED; true"]) { spec in
            spec.linux?.resources = Self.resources { $0.memory = .init(limit: 40 << 20); $0.cpu = .init(); $0.cpu?.quota = 50_000; $0.cpu?.period = 100_000 }
        }
        let view = try await vm.checkAsync("\(runtime) run -b bundles/view view")
        #expect(view.contains("0::/\n41943040\n50000 100000\n") && !view.contains("MKDIR-WORKED"), "\(view)")

        // A container with a writable cgroup mount moves itself into a cgroup below its own and
        // gives that controllers (its own cgroup may then hold no process): exec still gets in,
        // through its init's cgroup, and deletion takes the whole tree.
        try Self.bundle(vm, "nested", ["sh", "-c", "mkdir /sys/fs/cgroup/init && echo $$ > /sys/fs/cgroup/init/cgroup.procs && echo +pids > /sys/fs/cgroup/cgroup.subtree_control && sleep 300"]) { spec in
            spec.mounts = spec.mounts?.map { mount in
                guard mount.destination == "/sys/fs/cgroup" else { return mount }
                var writable = mount
                writable.options = mount.options?.filter { $0 != "ro" }
                return writable
            }
        }
        let nested = try await vm.checkAsync("""
            \(runtime) create -b bundles/nested --container-log /tmp/nested.log nested && \(runtime) start nested
            for i in $(seq 1 100); do grep -q pids /sys/fs/cgroup/iotkube-test/nested/cgroup.subtree_control 2>/dev/null && break; sleep 0.1; done
            \(runtime) exec nested -- cat /proc/self/cgroup; echo exec=$?
            \(runtime) delete --force nested; echo deleted=$?
            test -e /sys/fs/cgroup/iotkube-test/nested && echo tree-left
            true
            """)
        #expect(nested.contains("0::/init\nexec=0") && nested.contains("deleted=0") && !nested.contains("tree-left"), "\(nested)")

        // Devices: even with CAP_MKNOD a container cannot create or open the host's disk
        // nodes; the standard nodes work, and only as the rules allow (/dev/zero is read-only).
        try Self.bundle(vm, "devices", ["/bin/probe", "devices"]) { spec in
            spec.process?.capabilities?.bounding?.append("CAP_MKNOD")
            spec.process?.capabilities?.effective?.append("CAP_MKNOD")
            spec.process?.capabilities?.permitted?.append("CAP_MKNOD")
            spec.linux?.resources = Self.resources {
                $0.devices = [.init(allow: true, type: "c", major: 1, minor: 3, access: "rwm"), .init(allow: true, type: "c", major: 1, minor: 5, access: "r")]
            }
        }
        let devices = try await vm.checkAsync("\(runtime) run -b bundles/devices devices")
        #expect(devices.contains("mknod_block=EPERM") && devices.contains("open_null=OK") && devices.contains("write_zero=EPERM"), "\(devices)")
        // An assigned device as the agent gives one (the standard rules and exactly its own): the
        // node opens past the filter (no driver for 240: ENXIO), its neighbour is refused.
        try Self.bundle(vm, "assigned", ["/bin/probe", "assigned"]) { spec in
            spec.process?.capabilities?.bounding?.append("CAP_MKNOD")
            spec.process?.capabilities?.effective?.append("CAP_MKNOD")
            spec.process?.capabilities?.permitted?.append("CAP_MKNOD")
            spec.linux?.devices = [RuntimeSpec.Device(type: "c", path: "/dev/radio0", major: 240, minor: 0, fileMode: 0o660, uid: 0, gid: 0)]
            spec.linux?.resources = Self.resources { $0.devices = DeviceRules.standard + [.init(allow: true, type: "c", major: 240, minor: 0, access: "rwm")] }
        }
        let assigned = try await vm.checkAsync("\(runtime) run -b bundles/assigned assigned")
        #expect(assigned.contains("open_assigned=ENXIO") && assigned.contains("mknod_assigned=OK") && assigned.contains("mknod_other=EPERM"), "\(assigned)")
        // A privileged-style rule set ("allow everything") attaches no filter: mknod works, and
        // opening the node reaches the (absent) device.
        try Self.bundle(vm, "privileged", ["/bin/probe", "devices"]) { spec in
            spec.process?.capabilities?.bounding?.append("CAP_MKNOD")
            spec.process?.capabilities?.effective?.append("CAP_MKNOD")
            spec.process?.capabilities?.permitted?.append("CAP_MKNOD")
            spec.linux?.resources = Self.resources { $0.devices = [.init(allow: true, type: "a", major: nil, minor: nil, access: "rwm")] }
        }
        let privileged = try await vm.checkAsync("\(runtime) run -b bundles/privileged privileged")
        #expect(privileged.contains("mknod_block=OK") && privileged.contains("open_block=ENXIO") && privileged.contains("write_zero=OK"), "\(privileged)")

        // delete --force goes through cgroup.kill: every process of the container is gone, the
        // init (a PID 1 without a TERM handler) and children in another session included. The
        // shell execs its last command: three processes.
        try Self.bundle(vm, "kill", ["sh", "-c", "trap '' TERM; (setsid sleep 1001 &); sleep 1002 & sleep 1003"])
        let killed = try await vm.checkAsync("""
            \(runtime) create -b bundles/kill --container-log /tmp/kill.log --journal kill && \(runtime) start kill
            for i in $(seq 1 100); do [ "$(cat /sys/fs/cgroup/iotkube-test/kill/cgroup.procs | wc -l)" -ge 3 ] && break; sleep 0.1; done
            echo procs=$(cat /sys/fs/cgroup/iotkube-test/kill/cgroup.procs | wc -l)
            \(runtime) delete --force kill; echo deleted=$?
            sleep 0.5
            echo left=$(pgrep -c -f 'sleep 100[123]')
            test -e /sys/fs/cgroup/iotkube-test/kill && echo cgroup-left
            true
            """)
        #expect(killed.contains("procs=3") && killed.contains("deleted=0") && killed.contains("left=0") && !killed.contains("cgroup-left"), "\(killed)")

        // The systemd form of cgroupsPath (slice:prefix:name, the kubelet's systemd driver): the
        // monitor has systemd start a delegated scope in the slice holding the init. systemd
        // has the limits too, so a daemon-reload keeps them; exec gets in; the scope goes with
        // the container.
        try Self.bundle(vm, "scoped", ["sh", "-c", "cat /proc/self/cgroup; sleep 300"]) { spec in
            spec.linux?.cgroupsPath = "iotkubetest-pod1.slice:iotkube:scoped"
            spec.linux?.resources = Self.resources {
                $0.memory = .init(limit: 40 << 20); $0.memory?.swap = 40 << 20; $0.cpu = .init(); $0.cpu?.quota = 50_000; $0.cpu?.period = 100_000
                $0.pids = .init(limit: 64); $0.unified = ["memory.high": "33554432", "memory.min": "8388608"]
            }
        }
        let scopeDirectory = "/sys/fs/cgroup/iotkubetest.slice/iotkubetest-pod1.slice/iotkube-scoped.scope"
        let scoped = try await vm.checkAsync("""
            \(runtime) create -b bundles/scoped --container-log /tmp/scoped.log scoped && \(runtime) start scoped; echo created=$?
            systemctl is-active iotkube-scoped.scope; systemctl show -p Slice -p Delegate iotkube-scoped.scope
            systemctl daemon-reload
            cat \(scopeDirectory)/memory.max \(scopeDirectory)/cpu.max \(scopeDirectory)/pids.max \(scopeDirectory)/memory.high \(scopeDirectory)/memory.min \(scopeDirectory)/memory.swap.max
            \(runtime) exec scoped -- cat /proc/self/cgroup; echo exec=$?
            \(runtime) delete --force scoped; echo deleted=$?
            sleep 1
            echo units=$(systemctl list-units --all --no-legend 'iotkube-scoped.scope' | wc -l)
            test -e \(scopeDirectory) && echo scope-left
            true
            """)
        #expect(scoped.contains("created=0\nactive\n") && scoped.contains("Slice=iotkubetest-pod1.slice") && scoped.contains("Delegate=yes"), "\(scoped)")
        #expect(scoped.contains("41943040\n50000 100000\n64\n33554432\n8388608\n0\n0::/\nexec=0\ndeleted=0\nunits=0") && !scoped.contains("scope-left"), "\(scoped)")
        // An OOM kill is reported although systemd removes the scope's cgroup as soon as it is empty.
        try Self.bundle(vm, "scopedoom", ["/bin/probe", "alloc", "256"]) { spec in
            spec.linux?.cgroupsPath = "iotkubetest.slice:iotkube:scopedoom"
            spec.linux?.resources = Self.resources { $0.memory = .init(limit: 32 << 20); $0.memory?.swap = 32 << 20 }
        }
        let scopedOOM = try await vm.runAsync("\(runtime) run -b bundles/scopedoom scopedoom; echo status=$?; echo units=$(systemctl list-units --all --no-legend 'iotkube-scopedoom.scope' | wc -l)")
        #expect(scopedOOM.output.contains("status=137") && scopedOOM.output.contains("killed by the OOM killer") && scopedOOM.output.contains("units=0"), "\(scopedOOM.output)")

        // Output reaches the system journal (systemd-journald as PID 1 runs it) with the container's ID.
        try Self.bundle(vm, "journal", ["sh", "-c", "echo hello from the journal test; echo on stderr >&2"])
        let journal = try await vm.checkAsync("""
            \(runtime) create -b bundles/journal --container-log /tmp/journal.log --journal journal && \(runtime) start journal
            for i in $(seq 1 100); do \(runtime) state journal | grep -q stopped && break; sleep 0.1; done
            \(runtime) delete journal
            journalctl --sync; journalctl CONTAINER_ID=journal -o export | grep -a -E '^(MESSAGE|CONTAINER_STREAM|PRIORITY)='
            """)
        #expect(journal.contains("MESSAGE=hello from the journal test\nCONTAINER_STREAM=stdout") || journal.contains("CONTAINER_STREAM=stdout"), "\(journal)")
        #expect(journal.contains("MESSAGE=on stderr"), "\(journal)")
        await vm.stopAsync()
    }

    @Test("a missing memory controller is a clear error naming the kernel command line; other containers still run")
    func missingMemoryController() async throws {
        let vm = try await VirtualMachine.make(kernelArguments: "cgroup_disable=memory")
        try await onOwnThread { try Self.prepare(vm) }
        #expect(try await !vm.checkAsync("cat /sys/fs/cgroup/cgroup.controllers").contains("memory"))
        try Self.bundle(vm, "limited", ["true"]) { spec in
            spec.linux?.resources = Self.resources { $0.memory = .init(limit: 32 << 20) }
        }
        try Self.bundle(vm, "unlimited", ["sh", "-c", "echo ran"])
        let limited = try await vm.runAsync("iotkube-agent runtime --root /run/t run -b bundles/limited limited")
        #expect(limited.status != 0)
        #expect(limited.output.contains("the memory cgroup controller is not available") && limited.output.contains("cgroup_enable=memory"), "\(limited.output)")
        #expect(try await vm.checkAsync("iotkube-agent runtime --root /run/t run -b bundles/unlimited unlimited").contains("ran"))
        await vm.stopAsync()
    }

    static func number(after prefix: String, in text: String) -> Int {
        guard let range = text.range(of: prefix) else { return -1 }
        return Int(text[range.upperBound...].prefix { $0.isNumber }) ?? -1
    }
}
