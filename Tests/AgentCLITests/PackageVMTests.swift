import Foundation
import IotkubeTestSupport
import KubeModel
import Testing

/// The field path end to end in a Debian VM with systemd as PID 1 and pure cgroup v2: the .deb
/// from `packaging/build-deb.sh` installed with dpkg, `iotkube-agent join` against an
/// iotkube-server on the host, pods from a registry on the host, an OOM kill, a liveness
/// restart, `systemctl restart` keeping containers, and a reboot while the server is down.
@Suite(.ownThread, .heavy, .enabled(if: VirtualMachine.ready && PodNode.available, "\(VirtualMachine.reason); and what the pod tests need"), .serialized)
struct PackageVMTests {
    /// The package built by `packaging/test.sh` (packaging/build-deb.sh .build/package).
    static var package: String? {
        let directory = VirtualMachine.packageRoot + "/.build/package"
        let name = (try? FileManager.default.contentsOfDirectory(atPath: directory))?.filter { $0.hasPrefix("iotkube-agent_") && $0.hasSuffix(".deb") }.sorted().last
        return name.map { directory + "/" + $0 }
    }

    /// Steps print their time: the VM is slow (software emulation) and CI wants to see where it goes.
    static func step(_ name: String, since start: Date) {
        print("[vm e2e] \(name) after \(Int(Date().timeIntervalSince(start))) s")
    }

    @Test func theDebInstallsJoinsAndRunsPodsThroughRestartsAndAnOfflineReboot() async throws {
        guard let package = Self.package else {
            if ProcessInfo.processInfo.environment["CI"] == "true" {
                Issue.record("no package in .build/package: packaging/test.sh builds it with packaging/build-deb.sh")
            } else {
                print("[vm e2e] skipped: no .deb in .build/package (run packaging/build-deb.sh)")
            }
            return
        }
        let start = Date()
        let registry = try await onOwnThread { try PodImageRegistry.shared.get() }
        let guestRegistry = registry.address.replacingOccurrences(of: "127.0.0.1", with: "10.0.2.2")
        let image = "\(guestRegistry)/test/busybox:1"
        let server = try await onOwnThread { try ServerProcess(arguments: ["--node-monitor-grace-period", "120"], advertiseAddress: "10.0.2.2") }
        let vm = try await VirtualMachine.make()
        Self.step("VM booted", since: start)
        func guest(_ script: String, timeout: TimeInterval = 600) async throws -> String {
            try await vm.checkAsync(script, timeout: timeout)
        }
        func kubectl(_ arguments: [String], input: String? = nil) async throws -> String {
            let result = try await onOwnThread { try server.kubectl(arguments, input: input) }
            guard result.status == 0 else { throw TestFailure("kubectl \(arguments.joined(separator: " ")): \(result.output)") }
            return result.output
        }
        func pod(_ name: String) async throws -> Pod? {
            let result = try await onOwnThread { try server.kubectl(["get", "pod", name, "-o", "json"]) }
            return result.status == 0 ? try? KubeJSON.decode(Pod.self, from: Array(result.output.utf8)) : nil
        }
        func waitFor(_ name: String, seconds: TimeInterval, _ condition: (Pod) -> Bool) async throws -> Pod {
            let deadline = Date().addingTimeInterval(seconds)
            while Date() < deadline {
                if let current = try await pod(name), condition(current) { return current }
                try await Task.sleep(for: .seconds(1))
            }
            let journal = (try? await guest("journalctl -u iotkube-agent --no-pager -n 40")) ?? ""
            throw TestFailure("pod \(name): not in the expected state after \(Int(seconds)) s: \(String(describing: try await pod(name)?.status))\n\(journal)")
        }

        // Install: enabled, not started before join.
        try FileManager.default.copyItem(atPath: package, toPath: vm.share + "/iotkube.deb")
        let installed = try await guest("dpkg -i iotkube.deb && systemctl is-enabled iotkube-agent; systemctl is-active iotkube-agent; iotkube-agent version")
        #expect(installed.contains("enabled\ninactive"), "\(installed)")
        Self.step("package installed", since: start)

        // Join with a token: the unit starts, the node becomes Ready.
        let token = try await onOwnThread { try JoinTests.token(server) }
        _ = try await guest("iotkube-agent join '\(token)' --node-name vm-board --insecure-registry \(guestRegistry)")
        let deadline = Date().addingTimeInterval(300)
        var ready = false
        while Date() < deadline && !ready {
            ready = (try? await kubectl(["get", "node", "vm-board"]))?.range(of: #"vm-board\s+Ready"#, options: .regularExpression) != nil
            if !ready { try await Task.sleep(for: .seconds(2)) }
        }
        let notReady = ready ? "" : ((try? await guest("systemctl status iotkube-agent --no-pager; journalctl -u iotkube-agent --no-pager -n 30")) ?? "")
        #expect(ready, "the node did not become Ready: \(notReady)")
        Self.step("node Ready", since: start)

        try await kubectl(["apply", "-f", "-"], input: """
            apiVersion: v1
            kind: Pod
            metadata: {name: hungry}
            spec:
              restartPolicy: Never
              containers:
              - name: hungry
                image: \(image)
                command: ["sh", "-c", "dd if=/dev/zero of=/dev/null bs=96M count=1; echo survived; sleep 100000"]
                resources: {limits: {memory: 32Mi}}
            ---
            apiVersion: v1
            kind: Pod
            metadata: {name: unhealthy}
            spec:
              terminationGracePeriodSeconds: 1
              containers:
              - name: app
                image: \(image)
                command: ["sh", "-c", "touch /tmp/alive; sleep 20; rm /tmp/alive; sleep 100000"]
                livenessProbe:
                  exec: {command: ["test", "-f", "/tmp/alive"]}
                  periodSeconds: 3
                  failureThreshold: 2
            ---
            apiVersion: v1
            kind: Pod
            metadata: {name: steady}
            spec:
              terminationGracePeriodSeconds: 1
              containers: [{name: app, image: \(image), command: ["sleep", "100000"]}]
            ---
            apiVersion: v1
            kind: Pod
            metadata: {name: limited}
            spec:
              terminationGracePeriodSeconds: 1
              containers:
              - name: app
                image: \(image)
                command: ["sh", "-c", "cat /proc/self/cgroup /sys/fs/cgroup/memory.max /sys/fs/cgroup/cpu.max; sleep 100000"]
                resources: {limits: {cpu: 250m, memory: 48Mi}}
            """)
        let hungry = try await waitFor("hungry", seconds: 300) { $0.status?.phase == .failed }
        let terminated = PodNode.status(hungry, "hungry")?.state?.terminated
        #expect(terminated?.reason == "OOMKilled" && terminated?.exitCode == 137, "\(String(describing: terminated))")
        // The whole container went (memory.oom.group): the shell that ran dd never went on.
        let hungryLog = try await kubectl(["logs", "hungry"])
        #expect(!hungryLog.contains("survived"), "\(hungryLog)")
        Self.step("OOM kill of the whole container reported", since: start)
        let restarted = try await waitFor("unhealthy", seconds: 300) { (PodNode.status($0, "app")?.restartCount ?? 0) >= 1 }
        #expect(PodNode.status(restarted, "app")?.lastState?.terminated?.exitCode == 137)
        Self.step("liveness restart", since: start)
        // Pure cgroup v2 under systemd (the systemd driver, the default there): the Guaranteed
        // pod's slice directly in kubepods.slice with its limits, the container in a scope of
        // it, seeing its own cgroup as "0::/" and its own limits. systemd holds the same values:
        // a daemon-reload, which re-applies its own, changes nothing.
        let limited = try await waitFor("limited", seconds: 300) { PodNode.isReady($0) }
        let uid = limited.metadata.uid ?? ""
        let view = try await kubectl(["logs", "limited"])
        #expect(view == "0::/\n50331648\n25000 100000\n", "\(view)")
        let podSlice = "kubepods-pod\(uid.replacingOccurrences(of: "-", with: "_")).slice", scope = "iotkube-\(uid)-app-0.scope"
        let podDirectory = "/sys/fs/cgroup/kubepods.slice/" + podSlice
        let tree = try await guest("""
            systemctl daemon-reload
            cat \(podDirectory)/memory.max \(podDirectory)/cpu.max \(podDirectory)/\(scope)/memory.max \(podDirectory)/\(scope)/memory.oom.group
            cat /sys/fs/cgroup/kubepods.slice/kubepods-besteffort.slice/cpu.weight; grep -qv '^max$' /sys/fs/cgroup/kubepods.slice/memory.max && echo allocatable
            systemctl is-active \(podSlice) \(scope)
            """)
        #expect(tree == "50331648\n25000 100000\n50331648\n1\n1\nallocatable\nactive\nactive\n", "pod limits, the container's group OOM kill, the tiers: \(tree)")
        // Deleted, the pod leaves no unit and no cgroup behind.
        _ = try await kubectl(["delete", "pod", "limited", "--wait=true", "--timeout=300s"])
        let left = try await guest("""
            for i in $(seq 1 120); do [ "$(systemctl list-units --all --no-legend '\(podSlice)' '\(scope)' | wc -l)" = 0 ] && [ ! -e \(podDirectory) ] && break; sleep 0.5; done
            systemctl list-units --all --no-legend '\(podSlice)' '\(scope)'; test -e \(podDirectory) && echo cgroup-left; true
            """)
        #expect(left.isEmpty, "units or cgroup left after the pod: \(left)")
        Self.step("pod slices and container scopes on v2", since: start)
        let steady = try await waitFor("steady", seconds: 300) { PodNode.isReady($0) }
        let steadyID = PodNode.status(steady, "app")?.containerID

        // systemctl restart: the containers keep running and are adopted.
        _ = try await guest("systemctl restart iotkube-agent && systemctl is-active iotkube-agent")
        try await Task.sleep(for: .seconds(10))
        let adopted = try await waitFor("steady", seconds: 120) { PodNode.isReady($0) }
        #expect(PodNode.status(adopted, "app")?.containerID == steadyID)
        #expect(PodNode.status(adopted, "app")?.restartCount == 0)
        let journal = try await guest("journalctl -u iotkube-agent -o json --no-pager | grep -c '\"IOTKUBE_LOGGER\"' || true; journalctl -u iotkube-agent --no-pager | grep -c 'adopted container' || true")
        let counts = journal.split(separator: "\n").compactMap { Int($0) }
        #expect(counts.count == 2 && counts[0] > 0 && counts[1] > 0, "structured records and adoption in the journal: \(journal)")
        Self.step("agent restarted, containers adopted", since: start)

        // The server goes away and the board reboots: the pods come back from the checkpoint.
        server.process.terminate()
        server.process.waitUntilExit()
        try await vm.rebootAsync()
        Self.step("rebooted without a server", since: start)
        var running = ""
        for _ in 0..<120 {
            // `status` lists the local runtime's containers (and exits 1: the server is away).
            running = (try? await guest("iotkube-agent status || true")) ?? ""
            if running.contains("default/steady  app  running") { break }
            try await Task.sleep(for: .seconds(2))
        }
        let back = running.contains("default/steady  app  running")
        let bootLog = back ? "" : ((try? await guest("journalctl -u iotkube-agent -b --no-pager -n 30")) ?? "")
        #expect(back, "no container after the reboot: \(running)\n\(bootLog)")
        Self.step("pods running again from the checkpoint", since: start)
        // Offline, the agent still tells systemd it is up: no start timeout, no restarts.
        let unit = try await guest("systemctl is-active iotkube-agent; systemctl show -p NRestarts --value iotkube-agent")
        #expect(unit == "active\n0\n", "\(unit)")

        // The server is back: the status catches up.
        try await onOwnThread { try server.restart() }
        let caughtUp = try await waitFor("steady", seconds: 300) { current in
            PodNode.status(current, "app")?.containerID != steadyID && PodNode.status(current, "app")?.state?.running != nil
        }
        #expect(PodNode.status(caughtUp, "app")?.restartCount == 1)
        Self.step("statuses caught up", since: start)
        await vm.stopAsync()
    }
}
