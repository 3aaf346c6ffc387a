import Foundation
import IotkubeTestSupport
import KubeModel
import PodNetwork
import Synchronization
import SystemSupport
import Testing

/// Pods on one board through the bridge, host-local and portmap plugins in real namespaces.
@Suite(.ownThread, .enabled(if: NetworkFixture.ready, "needs root (network namespaces), the CNI plugins in /usr/lib/cni (containernetworking-plugins), nsenter and busybox"))
struct PodNetworkTests {
    @Test func podsReachEachOtherTheHostAndHostPorts() throws {
        let network = try NetworkFixture.network()
        defer { NetworkFixture.tearDown(network) }
        let webID = NetworkFixture.sandboxID("web"), clientID = NetworkFixture.sandboxID("client")
        let web = try NetworkFixture.sandbox(network, webID)
        let client = try NetworkFixture.sandbox(network, clientID)
        let hostPort = try ServerProcess.freePort()
        let webAttachment = try network.attachments.add(.init(
            sandboxID: webID, namespace: "default", name: "web", uid: "uid-web", networkNamespace: web.networkNamespace,
            portMappings: [PortMapping(hostPort: hostPort, containerPort: 8080)]))
        let clientAttachment = try network.attachments.add(.init(
            sandboxID: clientID, namespace: "default", name: "client", uid: "uid-client", networkNamespace: client.networkNamespace))
        let cidr = try PodCIDR.parse(network.cidr)
        let webIP = try #require(webAttachment.ips.first)
        let clientIP = try #require(clientAttachment.ips.first)
        #expect(webIP != clientIP)
        #expect(network.cidr.hasPrefix(webIP.split(separator: ".").prefix(3).joined(separator: ".") + "."), "\(webIP) in \(cidr)")
        #expect(try NetworkFixture.inPod(web, "hostname").output.contains(webID))

        // A server in one pod, reached from the other pod, from the host, and through the hostPort.
        let content = NSTemporaryDirectory() + "iotkube-www-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: content, withIntermediateDirectories: true)
        try "hello from the web pod\n".write(toFile: content + "/index.html", atomically: true, encoding: .utf8)
        let server = try BackgroundProcess("/usr/bin/nsenter", ["--net=\(web.networkNamespace)", "/bin/busybox", "httpd", "-f", "-p", "8080", "-h", content], logPath: content + "/server.log")
        defer { server.stop() }
        for _ in 0..<100 {
            if try NetworkFixture.inPod(web, "busybox netstat -ltn | grep -q :8080").status == 0 { break }
            Thread.sleep(forTimeInterval: 0.05)
        }
        let fromPod = try NetworkFixture.inPod(client, "timeout 10 busybox wget -q -O - http://\(webIP):8080/index.html")
        #expect(fromPod.output.contains("hello from the web pod"), "\(fromPod.output)")
        let fromHost = try NetworkFixture.shell("timeout 10 busybox wget -q -O - http://\(webIP):8080/index.html")
        #expect(fromHost.contains("hello from the web pod"), "\(fromHost)")
        let nodeIP = try NetworkFixture.nodeIP()
        for address in ["127.0.0.1", nodeIP] {
            let throughHostPort = try NetworkFixture.shell("timeout 10 busybox wget -q -O - http://\(address):\(hostPort)/index.html 2>&1")
            #expect(throughHostPort.contains("hello from the web pod"), "hostPort on \(address): \(throughHostPort)")
        }

        // A pod reaches a server on the host by the node's address (masqueraded egress path).
        let hostServer = try BackgroundProcess("/bin/busybox", ["httpd", "-f", "-p", "\(nodeIP):\(hostPort + 1)", "-h", content], logPath: content + "/host.log")
        defer { hostServer.stop() }
        Thread.sleep(forTimeInterval: 0.3)
        let toHost = try NetworkFixture.inPod(client, "timeout 10 busybox wget -q -O - http://\(nodeIP):\(hostPort + 1)/index.html 2>&1")
        #expect(toHost.output.contains("hello from the web pod"), "\(toHost.output)")

        // The cached attachment survives a new manager (an agent restart).
        let restarted = PodNetworkAttachments(network: network.attachments.network, plugins: network.attachments.plugins, cacheDirectory: network.attachments.cacheDirectory)
        #expect(restarted.attachment(sandboxID: webID)?.ips == [webIP])
        #expect(restarted.attachedSandboxIDs == [clientID, webID].sorted())
        try restarted.delete(sandboxID: webID)
        try restarted.delete(sandboxID: clientID)
        try web.remove()
        try client.remove()
        #expect(!web.exists)
        #expect(try NetworkFixture.shell("ip -o link show master \(network.bridge) 2>/dev/null").isEmpty)
        #expect(try NetworkFixture.shell("iptables-save -t nat | grep -c -- '--dport \(hostPort) ' || true").hasPrefix("0"))
    }

    /// 100 pods created and deleted: no veth, address lease, iptables rule or cache entry stays.
    @Test func createDeleteCyclesLeaveNothingBehind() throws {
        let network = try NetworkFixture.network()
        defer { NetworkFixture.tearDown(network) }
        let prefix = network.cidr.split(separator: ".").prefix(3).joined(separator: ".") + "."
        for cycle in 0..<100 {
            let id = NetworkFixture.sandboxID("cycle\(cycle)")
            let sandbox = try NetworkFixture.sandbox(network, id)
            let hostPort = ServerProcess.fixedTestPorts.lowerBound + cycle   // never handed out by freePort
            let attachment = try network.attachments.add(.init(
                sandboxID: id, namespace: "default", name: "cycle", uid: id, networkNamespace: sandbox.networkNamespace,
                portMappings: [PortMapping(hostPort: hostPort, containerPort: 80)]))
            #expect(attachment.ips.count == 1)
            try network.attachments.delete(sandboxID: id)
            try sandbox.remove()
            #expect(try NetworkFixture.shell("ip -o link show master \(network.bridge) 2>/dev/null").isEmpty, "cycle \(cycle): a veth stayed")
            // Its own rules name the sandbox or the pod range (a crashed earlier run may have left
            // rules for the same host port behind).
            // The range as a whole address prefix: unescaped, its dots matched any character and
            // so other tests' ranges ("10.170.3." matched 10.170.38.0/24).
            let escaped = prefix.replacingOccurrences(of: ".", with: "\\.")
            let rules = try NetworkFixture.shell("iptables-save -t nat | grep -E -e '\(id)' -e '(^|[^0-9])\(escaped)' || true")
            #expect(rules.isEmpty, "cycle \(cycle): iptables rules stayed: \(rules)")
        }
        #expect(network.attachments.attachedSandboxIDs.isEmpty)
        // host-local keeps one file per leased address (plus its bookkeeping files).
        let leases = try FileManager.default.contentsOfDirectory(atPath: network.base + "/ipam/iotkube").filter { $0.first?.isNumber == true }
        #expect(leases.isEmpty, "\(leases)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: network.base + "/sandboxes").isEmpty)
    }

    /// After an unclean stop the next start releases attachments of pods that are no longer
    /// wanted (their sandboxes still mounted: DEL removes veth, rules and lease), and the lease of
    /// a sandbox that vanished with a reboot (empty CNI_NETNS).
    @Test func staleAttachmentsAreReleasedOnTheNextStart() throws {
        let network = try NetworkFixture.network()
        defer { NetworkFixture.tearDown(network) }
        let kept = NetworkFixture.sandboxID("kept"), lost = NetworkFixture.sandboxID("lost"), rebooted = NetworkFixture.sandboxID("rebooted")
        for id in [kept, lost, rebooted] {
            let sandbox = try NetworkFixture.sandbox(network, id)
            _ = try network.attachments.add(.init(sandboxID: id, namespace: "default", name: id, uid: id, networkNamespace: sandbox.networkNamespace))
        }
        // The crash: the lost pod was deleted while the agent was down. The rebooted one's
        // namespace went away without a DEL (a reboot also clears iptables, which the test
        // cannot do to its host: the test removes its masquerade rules by hand).
        let rebootedAddress = try #require(network.attachments.attachment(sandboxID: rebooted)?.ips.first)
        try PodSandbox(directory: network.base + "/sandboxes/" + rebooted).remove()
        let restarted = PodNetworkAttachments(network: network.attachments.network, plugins: network.attachments.plugins, cacheDirectory: network.attachments.cacheDirectory)
        let released = restarted.releaseStale(keeping: [kept])
        #expect(released.released == [lost, rebooted].sorted())
        #expect(try NetworkFixture.shell("ip -o link show master \(network.bridge)").split(separator: "\n").count == 1, "only the kept pod's veth")
        _ = try NetworkFixture.shell("""
            chain=$(iptables-save -t nat | grep -- '-s \(rebootedAddress)/32' | grep -o 'CNI-[0-9a-f]*' | head -1)
            iptables-save -t nat | grep -- '-s \(rebootedAddress)/32' | sed 's/^-A/-D/' | while read -r rule; do eval iptables -t nat $rule; done
            [ -n "$chain" ] && iptables -t nat -F $chain && iptables -t nat -X $chain
            """)
        #expect(released.failures.isEmpty, "\(released.failures)")
        #expect(restarted.attachedSandboxIDs == [kept])
        let leases = try FileManager.default.contentsOfDirectory(atPath: network.base + "/ipam/iotkube").filter { $0.first?.isNumber == true }
        #expect(leases.count == 1)
    }

    @Test func exhaustedRangeAndTakenHostPortsAreClearErrors() throws {
        // A /30 has one address for pods after the gateway.
        let (_, unique) = try NetworkFixture.uniqueNetwork()
        let small = unique.replacingOccurrences(of: ".0/24", with: ".0/30")
        let network = try NetworkFixture.network(cidr: small)
        defer { NetworkFixture.tearDown(network) }
        let first = NetworkFixture.sandboxID("first"), second = NetworkFixture.sandboxID("second")
        let firstSandbox = try NetworkFixture.sandbox(network, first)
        let hostPort = try ServerProcess.freePort()
        _ = try network.attachments.add(.init(sandboxID: first, namespace: "default", name: "first", uid: first, networkNamespace: firstSandbox.networkNamespace,
                                              portMappings: [PortMapping(hostPort: hostPort, containerPort: 80)]))
        let secondSandbox = try NetworkFixture.sandbox(network, second)
        #expect {
            _ = try network.attachments.add(.init(sandboxID: second, namespace: "default", name: "second", uid: second, networkNamespace: secondSandbox.networkNamespace))
        } throws: { "\($0)".contains("CNI plugin bridge ADD") && "\($0)".contains("no IP addresses available") }
        #expect(!network.attachments.attachedSandboxIDs.contains(second), "a failed ADD leaves no attachment")
        // The same hostPort as another pod, and one a host process listens on.
        #expect {
            _ = try network.attachments.add(.init(sandboxID: second, namespace: "default", name: "second", uid: second, networkNamespace: secondSandbox.networkNamespace,
                                                  portMappings: [PortMapping(hostPort: hostPort, containerPort: 80)]))
        } throws: { "\($0)".contains("hostPort \(hostPort)/TCP is already used by pod default/first") }
        let listener = try BackgroundProcess("/bin/busybox", ["nc", "-l", "-p", "\(hostPort + 1)"], logPath: network.base + "/nc.log")
        defer { listener.stop() }
        for _ in 0..<100 {
            if try NetworkFixture.shell("busybox netstat -ltn").contains(":\(hostPort + 1) ") { break }
            Thread.sleep(forTimeInterval: 0.05)
        }
        #expect {
            _ = try network.attachments.add(.init(sandboxID: second, namespace: "default", name: "second", uid: second, networkNamespace: secondSandbox.networkNamespace,
                                                  portMappings: [PortMapping(hostPort: hostPort + 1, containerPort: 80)]))
        } throws: { "\($0)".contains("hostPort \(hostPort + 1)/TCP is already in use on this node") }
    }

    /// Sandboxes are made in-process, eight at once from as many threads: each gets namespaces of
    /// its own with its hostname and lo up, the calling threads stay in the host's namespaces,
    /// no child is left behind, and a failure leaves no namespace file.
    @Test func sandboxesAreMadeInProcessWithoutMovingTheCaller() throws {
        let base = NSTemporaryDirectory() + "iotkube-sandboxes-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: base) }
        @Sendable func inode(_ path: String) -> UInt64 {
            var info = stat()
            return stat(path, &info) == 0 ? UInt64(info.st_ino) : 0
        }
        let host = ["net", "ipc", "uts"].map { inode("/proc/self/ns/" + $0) }
        var hostname = [CChar](repeating: 0, count: 256)
        gethostname(&hostname, hostname.count)
        let results = Mutex<[Int: Result<PodSandbox, NetworkError>]>([:])
        let callers = Mutex<Set<[UInt64]>>([])
        DispatchQueue.concurrentPerform(iterations: 8) { index in
            let made = Result { () throws(NetworkError) in try PodSandbox.create(directory: base + "/s\(index)", hostname: "pod-\(index)") }
            // The namespace child was reaped before create returned (this thread runs only this).
            #expect((try? String(contentsOfFile: "/proc/thread-self/children", encoding: .utf8))?.isEmpty == true, "no child of this thread is left")
            let after = ["net", "ipc", "uts"].map { inode("/proc/thread-self/ns/" + $0) }
            results.withLock { $0[index] = made }
            callers.withLock { _ = $0.insert(after) }
        }
        #expect(callers.withLock { $0 } == [host], "every calling thread is still in the host's namespaces")
        var seen = Set<UInt64>()
        for index in 0..<8 {
            let sandbox = try results.withLock { $0[index]! }.get()
            let net = inode(sandbox.networkNamespace)
            #expect(net != 0 && net != host[0] && seen.insert(net).inserted, "a network namespace of its own")
            #expect(inode(sandbox.utsNamespace) != host[2] && inode(sandbox.ipcNamespace) != host[1])
            #expect(try ServerProcess.run("/usr/bin/nsenter", ["--uts=" + sandbox.utsNamespace, "hostname"]).output == "pod-\(index)\n")
            #expect(try ServerProcess.run("/usr/bin/nsenter", ["--net=" + sandbox.networkNamespace, "ip", "-o", "link", "show", "lo"]).output.contains(",UP"))
        }
        var after = [CChar](repeating: 0, count: 256)
        gethostname(&after, after.count)
        #expect(after == hostname, "the host's hostname is untouched")
        for index in 0..<8 {
            try PodSandbox(directory: base + "/s\(index)").remove()
            #expect(!FileManager.default.fileExists(atPath: base + "/s\(index)"))
        }
        // A hostname the kernel refuses (over 64 bytes): an error naming it, no namespace file.
        #expect { _ = try PodSandbox.create(directory: base + "/long", hostname: String(repeating: "h", count: 65)) } throws: { "\($0)".contains("hostname longer than 64 bytes") }
        #expect(FileTree.list(base + "/long").isEmpty)
    }

    @Test func brokenPluginsAndConfigurationsAreClearErrors() throws {
        let base = NSTemporaryDirectory() + "iotkube-cni-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: base + "/bin", withIntermediateDirectories: true)
        // A plugin that never answers, and a configuration naming a plugin that does not exist.
        // (a child of its own, as plugins start iptables: it must go too)
        try "#!/bin/sh\nsleep 600 &\nwait\n".write(toFile: base + "/bin/hang", atomically: true, encoding: .utf8)
        chmod(base + "/bin/hang", 0o755)
        let sandbox = try PodSandbox.create(directory: base + "/sandbox", hostname: "broken")
        defer { try? sandbox.remove() }
        let hanging = try CNINetworkList.parse(Array(#"{"cniVersion":"1.0.0","name":"slow","plugins":[{"type":"hang"}]}"#.utf8), source: "slow.conflist")
        let attachments = PodNetworkAttachments(network: hanging, plugins: CNIPlugins(directories: [base + "/bin"], timeoutSeconds: 1), cacheDirectory: base + "/cache")
        let id = NetworkFixture.sandboxID("slow")
        #expect {
            _ = try attachments.add(.init(sandboxID: id, namespace: "default", name: "slow", uid: id, networkNamespace: sandbox.networkNamespace))
        } throws: { error in
            // ADD timed out, and so did the DEL that cleans up after it.
            "\(error)".hasPrefix("CNI plugin hang ADD (network slow, container \(id)): no answer within 1 s; killed; cleaning up failed too")
        }
        #expect(try NetworkFixture.shell("pgrep -f 'sleep 60[0]' || true").isEmpty, "the hanging plugin was killed")

        let missing = try CNINetworkList.parse(Array(#"{"cniVersion":"1.0.0","name":"gone","plugins":[{"type":"no-such-plugin"}]}"#.utf8), source: "gone.conflist")
        let noPlugin = PodNetworkAttachments(network: missing, plugins: CNIPlugins(directories: [base + "/bin", "/usr/lib/cni"]), cacheDirectory: base + "/cache2")
        #expect {
            _ = try noPlugin.add(.init(sandboxID: id, namespace: "default", name: "gone", uid: id, networkNamespace: sandbox.networkNamespace))
        } throws: { "\($0)".contains("CNI plugin \"no-such-plugin\" not found in \(base)/bin, /usr/lib/cni") }
        // Its DEL cannot run either: the attachment stays recorded (without a result) so that it is
        // released once the plugin is there.
        #expect(noPlugin.attachedSandboxIDs == [id] && noPlugin.attachment(sandboxID: id) == nil)
    }
}

/// Configuration files and ranges, without root.
@Suite(.ownThread) struct CNIConfigurationTests {
    /// portmap runs only for pods with hostPorts, on ADD and on DEL alike (recording plugins).
    @Test func portmapRunsOnlyForPodsWithHostPorts() throws {
        let base = NSTemporaryDirectory() + "iotkube-cni-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: base + "/bin", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: base) }
        for name in ["first", "portmap"] {
            let script = """
                #!/bin/sh
                cat > /dev/null
                echo "$CNI_COMMAND \(name) $CNI_CONTAINERID" >> \(base)/calls
                [ "$CNI_COMMAND" = ADD ] && echo '{"cniVersion":"1.0.0","ips":[{"address":"10.9.9.9/24"}]}'
                exit 0

                """
            try script.write(toFile: "\(base)/bin/\(name)", atomically: true, encoding: .utf8)
            chmod("\(base)/bin/\(name)", 0o755)
        }
        let network = try CNINetworkList.parse(Array(#"{"cniVersion":"1.0.0","name":"rec","plugins":[{"type":"first"},{"type":"portmap","capabilities":{"portMappings":true}}]}"#.utf8), source: "rec.conflist")
        let attachments = PodNetworkAttachments(network: network, plugins: CNIPlugins(directories: [base + "/bin"]), cacheDirectory: base + "/cache")
        let plain = NetworkFixture.sandboxID("plain"), mapped = NetworkFixture.sandboxID("mapped")
        _ = try attachments.add(.init(sandboxID: plain, namespace: "default", name: "plain", uid: plain, networkNamespace: "/proc/self/ns/net"))
        _ = try attachments.add(.init(sandboxID: mapped, namespace: "default", name: "mapped", uid: mapped, networkNamespace: "/proc/self/ns/net",
                                      portMappings: [PortMapping(hostPort: Int.random(in: 40000...49000), containerPort: 80)]))
        try attachments.delete(sandboxID: plain)
        try attachments.delete(sandboxID: mapped)
        let calls = try String(contentsOfFile: base + "/calls", encoding: .utf8).split(separator: "\n").map(String.init)
        #expect(calls == ["ADD first \(plain)", "ADD first \(mapped)", "ADD portmap \(mapped)", "DEL first \(plain)", "DEL portmap \(mapped)", "DEL first \(mapped)"])
    }

    @Test(arguments: [
        ("{", "not valid JSON"),
        ("[]", "not a JSON object"),
        (#"{"cniVersion":"1.0.0","plugins":[{"type":"bridge"}]}"#, "\"name\" is missing"),
        (#"{"name":"n","plugins":[]}"#, "\"plugins\" must be a non-empty array"),
        (#"{"name":"n","plugins":[{"type":"../../bin/sh"}]}"#, "plugins[0].type must be a plugin file name"),
        (#"{"name":"n"}"#, "neither \"plugins\" nor \"type\""),
    ])
    func badConfigurations(_ text: String, _ message: String) {
        #expect {
            _ = try CNINetworkList.parse(Array(text.utf8), source: "/etc/cni/net.d/10-test.conflist")
        } throws: { "\($0)".contains("CNI configuration /etc/cni/net.d/10-test.conflist: \(message)") }
    }

    @Test func loadsTheFirstFileAndReadsASingleConf() throws {
        let directory = NSTemporaryDirectory() + "iotkube-netd-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        #expect { _ = try CNINetworkList.load(directory: directory) } throws: { "\($0)".contains("no CNI configuration in \(directory)") }
        try #"{"cniVersion":"0.4.0","name":"single","type":"bridge","bridge":"br9"}"#.write(toFile: directory + "/20-single.conf", atomically: true, encoding: .utf8)
        try #"{"cniVersion":"1.0.0","name":"later","plugins":[{"type":"bridge"}]}"#.write(toFile: directory + "/30-later.conflist", atomically: true, encoding: .utf8)
        let list = try CNINetworkList.load(directory: directory)
        #expect(list.name == "single" && list.cniVersion == "0.4.0" && list.plugins.count == 1 && list.source == directory + "/20-single.conf")
    }

    @Test func podCIDRsAreCheckedAgainstTheHost() throws {
        #expect { _ = try PodCIDR.parse("10.1.2.3/24") } throws: { "\($0)".contains("pod CIDR \"10.1.2.3/24\" has host bits set (the network is 10.1.2.0/24)") }
        #expect { _ = try PodCIDR.parse("fd00::/64") } throws: { "\($0)".contains("is not an IPv4 network") }
        #expect { _ = try PodCIDR.parse("10.0.0.0/31") } throws: { "\($0)".contains("prefix 8 to 30") }
        #expect(try PodCIDR.parse("10.244.0.0/16").overlaps(PodCIDR.parse("10.244.3.0/24")))
        #expect(try !PodCIDR.parse("10.244.0.0/24").overlaps(PodCIDR.parse("10.244.1.0/24")))
        #expect(try Array(IPv4Network("10.42.0.0/16").subnets(prefixLength: 24).prefix(2)).map(\.description) == ["10.42.0.0/24", "10.42.1.0/24"])
        #expect(try Array(IPv4Network("10.42.0.0/16").subnets(prefixLength: 24)).count == 256)
        // A range covering the node's own network is refused, naming the interface.
        let (interface, hostNetwork) = try #require(PodCIDR.hostNetworks().first)
        #expect { try PodCIDR.checkNoOverlapWithHost(hostNetwork, ownInterfaces: []) } throws: {
            "\($0)".contains("overlaps the host network \(hostNetwork) on \(interface)")
        }
        try PodCIDR.checkNoOverlapWithHost(hostNetwork, ownInterfaces: Set(PodCIDR.hostNetworks().map(\.interface)))
    }
}

/// The node-wide egress masquerade of the default network, in the host's real nat table.
@Suite(.ownThread, .enabled(if: getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/sbin/iptables"), "needs root and iptables"))
struct PodEgressMasqueradeTests {
    static func rules() throws -> String {
        try ServerProcess.run("/usr/sbin/iptables", ["-w", "5", "-t", "nat", "-S"]).output
    }

    @Test func rulesAreMadeOnceAndRemoved() throws {
        let range = "10.253.\(Int.random(in: 0...255)).0/24"
        let chain = PodEgressMasquerade.chain(for: range)
        #expect(chain.count <= 28 && chain.hasPrefix("IOTKUBE-EG-0AFD"))
        defer { PodEgressMasquerade.remove(podCIDR: range) }
        try PodEgressMasquerade.ensure(podCIDR: range)
        try PodEgressMasquerade.ensure(podCIDR: range)  // a restart of the agent
        let rules = try Self.rules().split(separator: "\n")
        #expect(rules.filter { $0.hasPrefix("-A POSTROUTING") && $0.contains("-j \(chain)") }.count == 1, "\(rules)")
        #expect(rules.filter { $0.hasPrefix("-A \(chain) ") } == [
            "-A \(chain) -d \(range) -j RETURN", "-A \(chain) -d 224.0.0.0/4 -j RETURN", "-A \(chain) -j MASQUERADE",
        ])
        PodEgressMasquerade.remove(podCIDR: range)
        #expect(try !Self.rules().contains(chain))
    }
}
