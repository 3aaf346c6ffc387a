#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif
import SystemSupport

/// Programs the proxy's table with `nft -f -`, one transaction per change: the whole table at
/// the first sync (or after a failed one), only the difference afterwards.
public struct NFTablesProxy: Sendable {
    public let nft: String
    /// What the kernel holds, as last applied by this process; nil: unknown (replace all).
    public private(set) var applied: ProxyRuleset?

    public init(nft: String) { self.nft = nft }

    /// The `nft` program, if installed.
    public static func find() -> String? {
        ["/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft"].first { FileTree.exists($0) }
    }

    /// Makes the table hold `desired`. On failure the next call replaces the whole table.
    /// Returns the bytes of the transaction sent (0: nothing changed).
    @discardableResult
    public mutating func apply(_ desired: ProxyRuleset) throws(NetworkError) -> Int {
        if applied == desired { return 0 }
        let script = desired.transaction(from: applied)
        applied = nil
        let outcome = try captured(nft, ["-f", "-"], input: Array(script.utf8), timeoutSeconds: 60)
        guard outcome.status == 0 else {
            let message = String(decoding: outcome.errorOutput.prefix(2000), as: UTF8.self)
            throw NetworkError("nft refused the service rules (exit \(outcome.status)): \(message)")
        }
        applied = desired
        return script.utf8.count
    }

    /// Removes the proxy's table (what `reset` does); a missing table is fine.
    public static func remove(nft: String) {
        _ = try? captured(nft, ["delete", "table", "ip", ProxyRuleset.table], timeoutSeconds: 30)
    }

    /// Lets bridged pod traffic through the ip hooks (replies from a service's pod to a pod on
    /// the same bridge must be un-NATed) and turns on forwarding, as kube-proxy requires.
    public static func prepareKernel() -> [String] {
        var problems: [String] = []
        for (path, value) in [("/proc/sys/net/bridge/bridge-nf-call-iptables", "1"), ("/proc/sys/net/ipv4/ip_forward", "1")] {
            if FileTree.readText(path)?.hasPrefix(value) == true { continue }
            let descriptor = open(path, O_WRONLY | O_CLOEXEC)
            guard descriptor >= 0 else {
                problems.append("\(path): \(String(cString: strerror(errno)))")
                continue
            }
            if write(descriptor, value, 1) != 1 { problems.append("\(path): \(String(cString: strerror(errno)))") }
            close(descriptor)
        }
        return problems
    }
}
