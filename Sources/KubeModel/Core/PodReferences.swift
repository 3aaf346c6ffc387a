/// The configmaps and secrets a pod uses: volumes, projected sources, env, envFrom, pull secrets.
public struct PodReferences: Sendable, Hashable {
    public var configMaps: Set<String> = []
    public var secrets: Set<String> = []

    public init(_ pod: Pod) {
        guard let spec = pod.spec else { return }
        for secret in spec.imagePullSecrets ?? [] { if let name = secret.name { secrets.insert(name) } }
        for volume in spec.volumes ?? [] {
            if let name = volume.configMap?.name { configMaps.insert(name) }
            if let name = volume.secret?.secretName { secrets.insert(name) }
            for source in volume.projected?.sources ?? [] {
                if let name = source.configMap?.name { configMaps.insert(name) }
                if let name = source.secret?.name { secrets.insert(name) }
            }
        }
        for container in (spec.initContainers ?? []) + spec.containers {
            for variable in container.env ?? [] {
                if let name = variable.valueFrom?.configMapKeyRef?.name { configMaps.insert(name) }
                if let name = variable.valueFrom?.secretKeyRef?.name { secrets.insert(name) }
            }
            for source in container.envFrom ?? [] {
                if let name = source.configMapRef?.name { configMaps.insert(name) }
                if let name = source.secretRef?.name { secrets.insert(name) }
            }
        }
    }
}
