import Runtime
import SystemSupport

/// Outgoing traffic of the default pod network, masqueraded by one node-wide rule set instead
/// of the bridge plugin's per-pod chain (which runs iptables nine times on every pod start and
/// again on every stop — most of a pod's start time on a small board): POSTROUTING sends the
/// pod range to the range's chain (``chain(for:)``), which leaves traffic within the range and
/// multicast alone and masquerades the rest. Made idempotently when the network is set up.
public enum PodEgressMasquerade {
    static let comment = "iotkube pod egress"

    /// One chain per range (several agents may share a host in tests): "IOTKUBE-EG-0A2A0700-24".
    public static func chain(for podCIDR: String) -> String {
        let parts = podCIDR.split(separator: "/")
        let octets = parts.first?.split(separator: ".").compactMap { UInt8($0) } ?? []
        let hex = octets.map { byte in String(byte, radix: 16, uppercase: true).count == 1 ? "0" + String(byte, radix: 16, uppercase: true) : String(byte, radix: 16, uppercase: true) }.joined()
        return "IOTKUBE-EG-\(hex)-\(parts.count > 1 ? String(parts[1]) : "32")"
    }

    static func iptables() -> String? {
        ["/usr/sbin/iptables", "/sbin/iptables", "/usr/bin/iptables"].first { FileTree.exists($0) }
    }

    /// Makes the range's chain hold exactly its rules and POSTROUTING jump to it.
    public static func ensure(podCIDR: String) throws(NetworkError) {
        let chain = chain(for: podCIDR)
        guard let iptables = iptables() else {
            throw NetworkError("iptables is not installed: pods on the default network cannot reach beyond the node (apt-get install iptables)")
        }
        func run(_ arguments: [String]) -> (status: Int32, output: String) {
            guard let result = try? CapturedProcess.run(iptables, ["-w", "5", "-t", "nat"] + arguments, timeoutSeconds: 30) else { return (-1, "could not run") }
            return (result.status, String(decoding: result.output + result.errorOutput, as: UTF8.self))
        }
        // -N fails when the chain exists: either way it exists afterwards, and is then emptied.
        _ = run(["-N", chain])
        var steps: [[String]] = [["-F", chain]]
        steps.append(["-A", chain, "-d", podCIDR, "-j", "RETURN"])
        steps.append(["-A", chain, "-d", "224.0.0.0/4", "-j", "RETURN"])
        steps.append(["-A", chain, "-j", "MASQUERADE"])
        for step in steps {
            let result = run(step)
            if result.status != 0 { throw NetworkError("iptables -t nat \(step.joined(separator: " ")): \(result.output)") }
        }
        let jump = ["POSTROUTING", "-s", podCIDR, "-m", "comment", "--comment", comment, "-j", chain]
        if run(["-C"] + jump).status != 0 {
            let added = run(["-A"] + jump)
            if added.status != 0 { throw NetworkError("iptables -t nat -A \(jump.joined(separator: " ")): \(added.output)") }
        }
    }

    /// Removes the range's jump and chain; what is not there is fine.
    public static func remove(podCIDR: String) {
        guard let iptables = iptables() else { return }
        let chain = chain(for: podCIDR)
        func run(_ arguments: [String]) -> Int32 {
            (try? CapturedProcess.run(iptables, ["-w", "5", "-t", "nat"] + arguments, timeoutSeconds: 30).status) ?? -1
        }
        let jump = ["POSTROUTING", "-s", podCIDR, "-m", "comment", "--comment", comment, "-j", chain]
        while run(["-D"] + jump) == 0 {}
        _ = run(["-F", chain])
        _ = run(["-X", chain])
    }
}
