import KubeModel

/// A pod's /etc/resolv.conf and /etc/hosts, as the kubelet writes them.
public struct PodDNS: Sendable {
    /// The cluster DNS servers (kubelet `clusterDNS`); empty: ClusterFirst falls back to Default.
    public var clusterDNS: [String]
    public var clusterDomain: String
    /// The node's resolver configuration (its /etc/resolv.conf text).
    public var hostResolvConf: String

    public init(clusterDNS: [String] = [], clusterDomain: String = "cluster.local", hostResolvConf: String) {
        self.clusterDNS = clusterDNS
        self.clusterDomain = clusterDomain
        self.hostResolvConf = hostResolvConf
    }

    /// Resolver limits of glibc that the kubelet also applies.
    static let maximumNameservers = 3
    static let maximumSearchDomains = 32
    static let maximumSearchLength = 2048

    struct Resolver: Equatable {
        var nameservers: [String] = []
        var searches: [String] = []
        var options: [(name: String, value: String?)] = []
        static func == (a: Resolver, b: Resolver) -> Bool {
            a.nameservers == b.nameservers && a.searches == b.searches && a.options.map { "\($0.name)\($0.value ?? "")" } == b.options.map { "\($0.name)\($0.value ?? "")" }
        }
    }

    /// The IPv4 name servers of a resolv.conf text (where the cluster DNS forwards other names).
    public static func nameservers(_ resolvConf: String) -> [String] {
        parse(resolvConf).nameservers.filter { IPv4Network.parseAddress($0) != nil }
    }

    static func parse(_ text: String) -> Resolver {
        var resolver = Resolver()
        for line in text.split(separator: "\n") {
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            guard let keyword = fields.first, !keyword.hasPrefix("#"), !keyword.hasPrefix(";") else { continue }
            switch keyword {
            case "nameserver" where fields.count > 1: resolver.nameservers.append(fields[1])
            case "search", "domain": resolver.searches = Array(fields.dropFirst())
            case "options":
                for option in fields.dropFirst() {
                    let parts = option.split(separator: ":", maxSplits: 1)
                    guard let name = parts.first else { continue }
                    resolver.options.append((String(name), parts.count > 1 ? String(parts[1]) : nil))
                }
            default: continue
            }
        }
        return resolver
    }

    /// The resolv.conf for `pod` (dnsPolicy, dnsConfig, hostNetwork); the message of a
    /// problem the pod should be told about (an event) comes back as `warning`.
    public func resolvConf(for pod: Pod) -> (text: String, warning: String?) {
        let spec = pod.spec
        let namespace = pod.metadata.namespace ?? "default"
        let host = Self.parse(hostResolvConf)
        var resolver = Resolver()
        var warning: String?
        var policy = spec?.dnsPolicy ?? .clusterFirst
        if policy == .clusterFirst && spec?.hostNetwork == true { policy = .default }
        if policy == .clusterFirstWithHostNet { policy = .clusterFirst }
        if policy == .clusterFirst && clusterDNS.isEmpty {
            warning = "pod \(namespace)/\(pod.metadata.name ?? ""): ClusterFirst DNS without a cluster DNS configured: using the node's resolver (Default)"
            policy = .default
        }
        switch policy {
        case .default:
            resolver = host
        case .clusterFirst, .clusterFirstWithHostNet:
            resolver.nameservers = clusterDNS
            resolver.searches = ["\(namespace).svc.\(clusterDomain)", "svc.\(clusterDomain)", clusterDomain] + host.searches
            resolver.options = [("ndots", "5")]
        case .none:
            break
        }
        if let config = spec?.dnsConfig {
            for server in config.nameservers ?? [] where !resolver.nameservers.contains(server) { resolver.nameservers.append(server) }
            for search in config.searches ?? [] where !resolver.searches.contains(search) { resolver.searches.append(search) }
            for option in config.options ?? [] {
                guard let name = option.name else { continue }
                resolver.options.removeAll { $0.name == name }
                resolver.options.append((name, option.value))
            }
        }
        if resolver.nameservers.count > Self.maximumNameservers {
            warning = "pod \(namespace)/\(pod.metadata.name ?? ""): more than \(Self.maximumNameservers) nameservers; only the first \(Self.maximumNameservers) are used"
            resolver.nameservers = Array(resolver.nameservers.prefix(Self.maximumNameservers))
        }
        var searches: [String] = []
        for search in resolver.searches where searches.count < Self.maximumSearchDomains
            && (searches + [search]).joined(separator: " ").utf8.count <= Self.maximumSearchLength {
            searches.append(search)
        }
        if searches.count < resolver.searches.count {
            warning = "pod \(namespace)/\(pod.metadata.name ?? ""): the search list is too long; some domains were left out"
        }
        var text = ""
        for server in resolver.nameservers { text += "nameserver \(server)\n" }
        if !searches.isEmpty { text += "search \(searches.joined(separator: " "))\n" }
        if !resolver.options.isEmpty {
            let options = resolver.options.map { option in option.value.map { "\(option.name):\($0)" } ?? option.name }
            text += "options \(options.joined(separator: " "))\n"
        }
        return (text, warning)
    }

    /// The pod's /etc/hosts: localhost entries, the pod's own name (with its subdomain FQDN) on
    /// its IP, then hostAliases. hostNetwork pods get the node's hosts file plus their aliases.
    public func hosts(for pod: Pod, podIPs: [String], nodeHosts: String) -> String {
        let spec = pod.spec
        var text: String
        if spec?.hostNetwork == true {
            text = nodeHosts.hasSuffix("\n") || nodeHosts.isEmpty ? nodeHosts : nodeHosts + "\n"
        } else {
            text = """
                # Kubernetes-managed hosts file.
                127.0.0.1\tlocalhost
                ::1\tlocalhost ip6-localhost ip6-loopback
                fe00::0\tip6-localnet
                fe00::0\tip6-mcastprefix
                fe00::1\tip6-allnodes
                fe00::2\tip6-allrouters

                """
            let hostname = Self.hostname(for: pod)
            for ip in podIPs {
                if let subdomain = spec?.subdomain, !subdomain.isEmpty {
                    text += "\(ip)\t\(hostname).\(subdomain).\(pod.metadata.namespace ?? "default").svc.\(clusterDomain)\t\(hostname)\n"
                } else {
                    text += "\(ip)\t\(hostname)\n"
                }
            }
        }
        if let aliases = spec?.hostAliases, !aliases.isEmpty {
            text += "\n# Entries added by HostAliases.\n"
            for alias in aliases { text += "\(alias.ip)\t\((alias.hostnames ?? []).joined(separator: "\t"))\n" }
        }
        return text
    }

    /// spec.hostname, else the pod name, cut to 63 characters without a trailing '-' or '.'.
    public static func hostname(for pod: Pod) -> String {
        var name = pod.spec?.hostname.flatMap { $0.isEmpty ? nil : $0 } ?? pod.metadata.name ?? "pod"
        if name.count > 63 {
            name = String(name.prefix(63))
            while name.hasSuffix("-") || name.hasSuffix(".") { name.removeLast() }
        }
        return name
    }
}
