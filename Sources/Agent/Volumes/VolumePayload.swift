#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif
import KubeModel

/// The files of a configMap, secret, downwardAPI or projected volume, from the objects the pod
/// refers to, with the kubelet's rules for `items`, `optional` and modes.
public enum VolumePayload {
    /// What the payload is built from (besides the pod): the pod's namespace's ConfigMaps and
    /// Secrets (nil = does not exist) and service account tokens (audience, seconds → token).
    public struct Sources: Sendable {
        public var configMap: @Sendable (String) -> ConfigMap?
        public var secret: @Sendable (String) -> Secret?
        public var serviceAccountToken: @Sendable (String?, Int64) throws -> String
        public init(
            configMap: @escaping @Sendable (String) -> ConfigMap? = { _ in nil }, secret: @escaping @Sendable (String) -> Secret? = { _ in nil },
            serviceAccountToken: @escaping @Sendable (String?, Int64) throws -> String = { _, _ in throw PodSetupError("no service account tokens on this node") }
        ) {
            self.configMap = configMap
            self.secret = secret
            self.serviceAccountToken = serviceAccountToken
        }
    }

    public static func files(for volume: Volume, pod: Pod, container: Container? = nil, sources: Sources) throws(PodSetupError) -> [String: VolumeDirectoryWriter.File] {
        let label = "volume \(volume.name)"
        if let source = volume.configMap {
            return try keys(label, "ConfigMap", source.name, configMapData(source.name.flatMap(sources.configMap)), source.items, source.optional, mode(source.defaultMode))
        }
        if let source = volume.secret {
            return try keys(label, "Secret", source.secretName, secretData(source.secretName.flatMap(sources.secret)), source.items, source.optional, mode(source.defaultMode))
        }
        if let source = volume.downwardAPI {
            return try downward(label, source.items ?? [], pod: pod, container: container, defaultMode: mode(source.defaultMode))
        }
        if let source = volume.projected {
            var files: [String: VolumeDirectoryWriter.File] = [:]
            let defaultMode = mode(source.defaultMode)
            for projection in source.sources ?? [] {
                var part: [String: VolumeDirectoryWriter.File] = [:]
                if let reference = projection.configMap {
                    part = try keys(label, "ConfigMap", reference.name, configMapData(reference.name.flatMap(sources.configMap)), reference.items, reference.optional, defaultMode)
                } else if let reference = projection.secret {
                    part = try keys(label, "Secret", reference.name, secretData(reference.name.flatMap(sources.secret)), reference.items, reference.optional, defaultMode)
                } else if let downwardAPI = projection.downwardAPI {
                    part = try downward(label, downwardAPI.items ?? [], pod: pod, container: container, defaultMode: defaultMode)
                } else if let token = projection.serviceAccountToken {
                    do {
                        part = [token.path: .init(Array(try sources.serviceAccountToken(token.audience, token.expirationSeconds ?? 3600).utf8), mode: defaultMode)]
                    } catch { throw PodSetupError("\(label): service account token: \(error)") }
                } else {
                    throw PodSetupError("\(label): a projected source this agent does not support")
                }
                for path in part.keys where files[path] != nil { throw PodSetupError("\(label): two projected sources write \(path)") }
                files.merge(part) { $1 }
            }
            return files
        }
        throw PodSetupError("\(label): not a configMap, secret, downwardAPI or projected volume")
    }

    static func mode(_ value: Int32?) -> mode_t { mode_t(value.map { $0 & 0o777 } ?? 0o644) }

    static func configMapData(_ map: ConfigMap?) -> [String: [UInt8]]? {
        guard let map else { return nil }
        var data = (map.data ?? [:]).mapValues { Array($0.utf8) }
        for (key, value) in map.binaryData ?? [:] { data[key] = value.bytes }
        return data
    }

    static func secretData(_ secret: Secret?) -> [String: [UInt8]]? {
        guard let secret else { return nil }
        var data = (secret.data ?? [:]).mapValues(\.bytes)
        for (key, value) in secret.stringData ?? [:] { data[key] = Array(value.utf8) }
        return data
    }

    /// All keys, or the listed `items` (each key must exist unless the source is optional).
    static func keys(
        _ label: String, _ kind: String, _ name: String?, _ data: [String: [UInt8]]?, _ items: [KeyToPath]?, _ optional: Bool?, _ defaultMode: mode_t
    ) throws(PodSetupError) -> [String: VolumeDirectoryWriter.File] {
        guard let data else {
            if optional == true { return [:] }
            throw PodSetupError("\(label): \(kind) \"\(name ?? "")\" not found")
        }
        guard let items, !items.isEmpty else { return data.mapValues { .init($0, mode: defaultMode) } }
        var files: [String: VolumeDirectoryWriter.File] = [:]
        for item in items {
            guard let bytes = data[item.key] else {
                if optional == true { continue }
                throw PodSetupError("\(label): \(kind) \"\(name ?? "")\" has no key \"\(item.key)\"")
            }
            try VolumeDirectoryWriter.validate(item.path)
            files[item.path] = .init(bytes, mode: item.mode.map { mode_t($0 & 0o777) } ?? defaultMode)
        }
        return files
    }

    static func downward(
        _ label: String, _ items: [DownwardAPIVolumeFile], pod: Pod, container: Container?, defaultMode: mode_t
    ) throws(PodSetupError) -> [String: VolumeDirectoryWriter.File] {
        var files: [String: VolumeDirectoryWriter.File] = [:]
        /// key="value" lines, sorted, with \ " and newlines escaped (the kubelet's format).
        func lines(_ map: [String: String]?) -> String {
            let values = map ?? [:]
            return values.keys.sorted().map { key -> String in
                var escaped = ""
                for character in values[key]! {
                    switch character {
                    case "\\": escaped += "\\\\"
                    case "\"": escaped += "\\\""
                    case "\n": escaped += "\\n"
                    default: escaped.append(character)
                    }
                }
                return "\(key)=\"\(escaped)\""
            }.joined(separator: "\n")
        }
        for item in items {
            try VolumeDirectoryWriter.validate(item.path)
            var text: String
            if let field = item.fieldRef {
                switch field.fieldPath {
                case "metadata.labels": text = lines(pod.metadata.labels)
                case "metadata.annotations": text = lines(pod.metadata.annotations)
                default:
                    do {
                        var source = EnvVarSource()
                        source.fieldRef = field
                        text = try ContainerProcess.value(of: source, variable: item.path, container: container ?? Container(name: ""), pod: pod, context: .init()) ?? ""
                    } catch { throw PodSetupError("\(label): \(item.path): fieldRef \"\(field.fieldPath)\" is not supported") }
                }
            } else if let resource = item.resourceFieldRef {
                guard let name = resource.containerName, let owner = (pod.spec?.containers ?? []).first(where: { $0.name == name }) else {
                    throw PodSetupError("\(label): \(item.path): resourceFieldRef needs the containerName of a container of the pod")
                }
                var source = EnvVarSource()
                source.resourceFieldRef = resource
                text = try ContainerProcess.value(of: source, variable: item.path, container: owner, pod: pod, context: .init()) ?? ""
            } else {
                throw PodSetupError("\(label): \(item.path): needs fieldRef or resourceFieldRef")
            }
            files[item.path] = .init(Array(text.utf8), mode: item.mode.map { mode_t($0 & 0o777) } ?? defaultMode)
        }
        return files
    }
}
