import KubeModel
import OCI

/// A container's command line, environment and working directory, computed as the kubelet and
/// a CRI runtime do from the pod, the container and the image's configuration.
public struct ContainerProcess: Sendable, Hashable {
    public var args: [String]
    /// NAME=value, the image's variables first, then envFrom and env (a later name replaces an earlier).
    public var env: [String]
    public var workingDirectory: String
    /// Problems the pod should be told about that do not stop it (skipped envFrom keys).
    public var warnings: [String]

    public init(args: [String], env: [String], workingDirectory: String, warnings: [String] = []) {
        self.args = args
        self.env = env
        self.workingDirectory = workingDirectory
        self.warnings = warnings
    }

    /// What `valueFrom` and `envFrom` read besides the pod: ConfigMaps and Secrets of the pod's
    /// namespace (nil = does not exist), the pod's IPs and the node's allocatable resources.
    public struct Context: Sendable {
        public var configMap: @Sendable (String) -> [String: String]?
        public var secret: @Sendable (String) -> [String: String]?
        public var podIPs: [String]
        public var hostIPs: [String]
        public var nodeAllocatable: [String: Quantity]
        public init(
            configMap: @escaping @Sendable (String) -> [String: String]? = { _ in nil }, secret: @escaping @Sendable (String) -> [String: String]? = { _ in nil },
            podIPs: [String] = [], hostIPs: [String] = [], nodeAllocatable: [String: Quantity] = [:]
        ) {
            self.configMap = configMap
            self.secret = secret
            self.podIPs = podIPs
            self.hostIPs = hostIPs
            self.nodeAllocatable = nodeAllocatable
        }
    }

    /// Resolves `container` of `pod` against the image defaults. Errors name the container and
    /// the variable (a missing ConfigMap key, an unsupported field path, no command at all).
    public static func resolve(
        _ container: Container, of pod: Pod, image: ImageConfiguration.ExecutionConfiguration?, context: Context
    ) throws(PodSetupError) -> ContainerProcess {
        let label = "container \(container.name)"
        var warnings: [String] = []
        // Variables the container declares, in order; $(NAME) may refer to earlier ones.
        var declared: [(String, String)] = []
        var known: [String: String] = [:]
        func declare(_ name: String, _ value: String) {
            if let index = declared.firstIndex(where: { $0.0 == name }) { declared[index].1 = value } else { declared.append((name, value)) }
            known[name] = value
        }
        for source in container.envFrom ?? [] {
            let prefix = source.prefix ?? ""
            let kind: String, reference: EnvSourceReference, values: [String: String]?
            if let configMap = source.configMapRef {
                (kind, reference, values) = ("ConfigMap", configMap, configMap.name.flatMap(context.configMap))
            } else if let secret = source.secretRef {
                (kind, reference, values) = ("Secret", secret, secret.name.flatMap(context.secret))
            } else {
                throw PodSetupError("\(label): envFrom needs configMapRef or secretRef")
            }
            guard let values else {
                if reference.optional == true { continue }
                throw PodSetupError("\(label): envFrom: \(kind) \"\(reference.name ?? "")\" not found")
            }
            var skipped: [String] = []
            for key in values.keys.sorted() {
                let name = prefix + key
                if isValidName(name) { declare(name, values[key]!) } else { skipped.append(name) }
            }
            if !skipped.isEmpty {
                warnings.append("\(label): keys [\(skipped.joined(separator: ", "))] from the EnvFrom \(kind) \(pod.metadata.namespace ?? "default")/\(reference.name ?? "") were skipped since they are invalid environment variable names")
            }
        }
        for variable in container.env ?? [] {
            guard isValidName(variable.name) else { throw PodSetupError("\(label): env: \"\(variable.name)\" is not a valid variable name") }
            if let source = variable.valueFrom {
                guard let value = try value(of: source, variable: variable.name, container: container, pod: pod, context: context) else { continue }
                declare(variable.name, value)
            } else {
                declare(variable.name, expand(variable.value ?? "", known))
            }
        }
        // The image's variables come first; the container's replace them.
        var env: [(String, String)] = []
        for entry in image?.env ?? [] {
            let parts = entry.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            env.append((String(parts[0]), parts.count > 1 ? String(parts[1]) : ""))
        }
        for (name, value) in declared {
            if let index = env.firstIndex(where: { $0.0 == name }) { env[index].1 = value } else { env.append((name, value)) }
        }
        // command replaces the entrypoint (and drops Cmd); args alone replace Cmd.
        var args: [String]
        if let command = container.command, !command.isEmpty {
            args = command + (container.args ?? [])
        } else if let containerArgs = container.args, !containerArgs.isEmpty {
            args = (image?.entrypoint ?? []) + containerArgs
        } else {
            args = (image?.entrypoint ?? []) + (image?.cmd ?? [])
        }
        args = args.map { expand($0, known) }
        guard let first = args.first, !first.isEmpty else {
            throw PodSetupError("\(label): no command: the pod gives none and the image has no Entrypoint or Cmd")
        }
        let workingDirectory = container.workingDir.flatMap { $0.isEmpty ? nil : $0 } ?? image?.workingDir.flatMap { $0.isEmpty ? nil : $0 } ?? "/"
        guard workingDirectory.hasPrefix("/") else { throw PodSetupError("\(label): workingDir \"\(workingDirectory)\" is not an absolute path") }
        return ContainerProcess(args: args, env: env.map { "\($0.0)=\($0.1)" }, workingDirectory: workingDirectory, warnings: warnings)
    }

    /// Any printable ASCII but '=' (what the API server accepts since Kubernetes 1.30).
    static func isValidName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.allSatisfy { $0 >= 0x20 && $0 < 0x7F && $0 != 0x3D }
    }

    /// $(NAME) → the value of a known variable; $$(NAME) → $(NAME); anything else stays as written.
    public static func expand(_ text: String, _ variables: [String: String]) -> String {
        guard text.contains("$") else { return text }
        var result = ""
        var characters = Substring(text)
        while let dollar = characters.firstIndex(of: "$") {
            result += characters[..<dollar]
            let rest = characters[characters.index(after: dollar)...]
            if rest.hasPrefix("$") {
                result += "$"
                characters = rest.dropFirst()
            } else if rest.hasPrefix("("), let close = rest.firstIndex(of: ")") {
                let name = String(rest[rest.index(after: rest.startIndex)..<close])
                if let value = variables[name] { result += value } else { result += "$(" + name + ")" }
                characters = rest[rest.index(after: close)...]
            } else {
                result += "$"
                characters = rest
            }
        }
        return result + characters
    }

    static func value(
        of source: EnvVarSource, variable: String, container: Container, pod: Pod, context: Context
    ) throws(PodSetupError) -> String? {
        let label = "container \(container.name): env \(variable)"
        if let field = source.fieldRef {
            let path = field.fieldPath
            switch path {
            case "metadata.name": return pod.metadata.name ?? ""
            case "metadata.namespace": return pod.metadata.namespace ?? "default"
            case "metadata.uid": return pod.metadata.uid ?? ""
            case "spec.nodeName": return pod.spec?.nodeName ?? ""
            case "spec.serviceAccountName": return pod.spec?.serviceAccountName ?? ""
            case "status.podIP": return context.podIPs.first ?? ""
            case "status.podIPs": return context.podIPs.joined(separator: ",")
            case "status.hostIP": return context.hostIPs.first ?? ""
            case "status.hostIPs": return context.hostIPs.joined(separator: ",")
            default:
                for (prefix, map) in [("metadata.labels['", pod.metadata.labels), ("metadata.annotations['", pod.metadata.annotations)]
                where path.hasPrefix(prefix) && path.hasSuffix("']") {
                    let key = String(path.dropFirst(prefix.count).dropLast(2))
                    return map?[key] ?? ""
                }
                throw PodSetupError("\(label): fieldRef \"\(path)\" is not supported")
            }
        }
        if let resource = source.resourceFieldRef {
            let requirements = container.resources
            let parts = resource.resource.split(separator: ".", maxSplits: 1).map(String.init)
            guard parts.count == 2, ["limits", "requests"].contains(parts[0]), ["cpu", "memory", "ephemeral-storage"].contains(parts[1]) else {
                throw PodSetupError("\(label): resourceFieldRef \"\(resource.resource)\" is not supported")
            }
            // An unset limit is the node's allocatable; an unset request is 0 (kubelet).
            let quantity = (parts[0] == "limits" ? requirements?.limits?[parts[1]] ?? context.nodeAllocatable[parts[1]] : requirements?.requests?[parts[1]])
                ?? Quantity(0)
            let divisor = resource.divisor ?? Quantity(1)
            guard !divisor.isZero else { throw PodSetupError("\(label): resourceFieldRef divisor is zero") }
            // Rounded up, at least 1 for a non-zero CPU (kubelet's convertResourceCPUToString).
            let value = (quantity.nanoUnits + divisor.nanoUnits - 1) / divisor.nanoUnits
            return String(parts[1] == "cpu" && !quantity.isZero ? max(1, value) : value)
        }
        for (kind, selector, lookup) in [("ConfigMap", source.configMapKeyRef, context.configMap), ("Secret", source.secretKeyRef, context.secret)] {
            guard let selector else { continue }
            let name = selector.name ?? ""
            guard let values = lookup(name) else {
                if selector.optional == true { return nil }
                throw PodSetupError("\(label): \(kind) \"\(name)\" not found")
            }
            guard let value = values[selector.key] else {
                if selector.optional == true { return nil }
                throw PodSetupError("\(label): couldn't find key \(selector.key) in \(kind) \(pod.metadata.namespace ?? "default")/\(name)")
            }
            return value
        }
        throw PodSetupError("\(label): valueFrom names no source")
    }
}

/// Why a pod cannot be set up as specified; the message names the container and field.
public struct PodSetupError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}
