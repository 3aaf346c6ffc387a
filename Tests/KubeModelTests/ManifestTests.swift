import Testing

@testable import KubeModel

/// Real-world manifests decode into the typed model with every field a kubelet reads.
struct ManifestTests {
    @Test(arguments: Fixtures.podFixtures)
    func podFixtureDecodesStrictly(_ name: String) throws {
        for tree in try Fixtures.trees(name) {
            let pod = try KubeJSON.decode(Pod.self, from: tree, validation: .strict)
            #expect(pod.kind == "Pod")
            #expect(!(pod.spec?.containers.isEmpty ?? true), "\(name) has containers")
            // Encoding and decoding again gives the same object.
            let again = try KubeJSON.decode(Pod.self, from: try KubeJSON.encode(pod), validation: .strict)
            #expect(again == pod, "\(name)")
        }
    }

    @Test func multiContainerPodFields() throws {
        let pod = try KubeYAML.decode(Pod.self, from: try Fixtures.bytes("pod-multi-container.yaml"))
        let spec = try #require(pod.spec)
        #expect(spec.containers.map(\.name) == ["nginx", "shipper"])
        let nginx = spec.containers[0]
        #expect(nginx.ports?.first?.containerPort == 80)
        #expect(nginx.ports?.first?.protocol == .tcp)
        #expect(nginx.imagePullPolicy == .ifNotPresent)
        #expect(nginx.resources?.limits?["cpu"]?.milliValue == 500)
        #expect(nginx.resources?.limits?["memory"]?.byteCount == 128 << 20)
        #expect(nginx.resources?.requests?["cpu"]?.description == "100m")
        #expect(pod.metadata.labels?["app.kubernetes.io/name"] == "web")
        #expect(spec.containers[1].volumeMounts?.first?.readOnly == true)
        #expect(spec.volumes?.first?.emptyDir == EmptyDirVolumeSource())
        #expect(spec.restartPolicy == .always)
    }

    @Test func initAndSidecarContainers() throws {
        let pod = try KubeYAML.decode(Pod.self, from: try Fixtures.bytes("pod-init-containers.yaml"))
        let initContainers = try #require(pod.spec?.initContainers)
        #expect(initContainers.map(\.name) == ["wait-for-config", "log-forwarder"])
        #expect(initContainers[0].restartPolicy == nil)
        #expect(initContainers[1].restartPolicy == .always)
        #expect(initContainers[1].startupProbe?.exec?.command == ["test", "-f", "/var/log/app.log"])
        #expect(pod.spec?.volumes?.first?.emptyDir?.medium == .memory)
        #expect(pod.spec?.volumes?.first?.emptyDir?.sizeLimit?.byteCount == 1 << 20)
        #expect(pod.spec?.restartPolicy == .onFailure)
    }

    @Test func everyProbeKind() throws {
        let exec = try KubeYAML.decode(Pod.self, from: try Fixtures.bytes("pod-probes-exec.yaml"))
        let liveness = try #require(exec.spec?.containers.first?.livenessProbe)
        #expect(liveness.exec?.command == ["cat", "/tmp/healthy"])
        #expect(liveness.initialDelaySeconds == 5)
        #expect(liveness.terminationGracePeriodSeconds == 10)

        let network = try KubeYAML.decode(Pod.self, from: try Fixtures.bytes("pod-probes-network.yaml"))
        let server = try #require(network.spec?.containers.first)
        #expect(server.startupProbe?.httpGet?.port == .string("http"))
        #expect(server.livenessProbe?.httpGet?.port == .int(8080))
        #expect(server.livenessProbe?.httpGet?.scheme == .http)
        #expect(server.livenessProbe?.httpGet?.httpHeaders == [HTTPHeader(name: "X-Probe", value: "liveness")])
        #expect(server.readinessProbe?.tcpSocket?.port == .int(8080))
        #expect(server.ports?[2].protocol == .udp)
        let grpc = try #require(network.spec?.containers.last?.livenessProbe?.grpc)
        #expect(grpc.port == 9090)
        #expect(grpc.service == "health")
    }

    @Test func everyVolumeKind() throws {
        let host = try KubeYAML.decode(Pod.self, from: try Fixtures.bytes("pod-volumes-host.yaml"))
        let hostVolumes = try #require(host.spec?.volumes)
        #expect(hostVolumes[0].hostPath == HostPathVolumeSource(path: "/dev/gpiomem", type: .charDevice))
        #expect(hostVolumes[1].hostPath?.type == .directoryOrCreate)
        #expect(hostVolumes[2].emptyDir?.sizeLimit?.description == "500Mi")
        #expect(host.spec?.containers.first?.volumeMounts?[1].mountPropagation == .hostToContainer)
        #expect(host.spec?.nodeSelector?["kubernetes.io/arch"] == "arm64")
        #expect(hostVolumes.allSatisfy { $0.hasKnownSource })

        let config = try KubeYAML.decode(Pod.self, from: try Fixtures.bytes("pod-volumes-config.yaml"))
        let configVolumes = try #require(config.spec?.volumes)
        // YAML 1.1 octal, as kubectl reads it: 0644 is 420 and 0400 is 256.
        #expect(configVolumes[0].configMap?.defaultMode == 420)
        #expect(configVolumes[0].configMap?.items?[1].mode == 256)
        #expect(configVolumes[1].secret?.secretName == "app-tls")
        #expect(configVolumes[1].secret?.defaultMode == 256)
        #expect(configVolumes[1].secret?.optional == false)

        let projected = try KubeYAML.decode(Pod.self, from: try Fixtures.bytes("pod-volumes-projected.yaml"))
        let projectedVolumes = try #require(projected.spec?.volumes)
        let downward = try #require(projectedVolumes[0].downwardAPI?.items)
        #expect(downward[0].fieldRef?.fieldPath == "metadata.labels")
        #expect(downward[2].resourceFieldRef?.divisor?.byteCount == 1 << 20)
        let sources = try #require(projectedVolumes[1].projected?.sources)
        #expect(projectedVolumes[1].projected?.defaultMode == 0o440)
        #expect(sources[0].secret?.items?.first?.path == "my-group/my-username")
        #expect(sources[1].configMap?.name == "myconfigmap")
        #expect(sources[2].downwardAPI?.items?.first?.fieldRef?.fieldPath == "metadata.name")
        #expect(sources[3].serviceAccountToken?.expirationSeconds == 3600)
    }

    @Test func securityContexts() throws {
        let pod = try KubeYAML.decode(Pod.self, from: try Fixtures.bytes("pod-security.yaml"))
        let podContext = try #require(pod.spec?.securityContext)
        #expect(podContext.runAsUser == 1000)
        #expect(podContext.supplementalGroups == [4000, 5000])
        #expect(podContext.sysctls == [Sysctl(name: "net.ipv4.ip_unprivileged_port_start", value: "0")])
        #expect(podContext.seccompProfile?.type == .runtimeDefault)
        let app = try #require(pod.spec?.containers.first?.securityContext)
        #expect(app.capabilities?.drop == ["ALL"])
        #expect(app.capabilities?.add == ["NET_BIND_SERVICE"])
        #expect(app.allowPrivilegeEscalation == false)
        #expect(app.seccompProfile == SeccompProfile(type: .localhost, localhostProfile: "profiles/app.json"))
        #expect(pod.spec?.containers.last?.securityContext?.seccompProfile?.type == .unconfined)
    }

    @Test func environmentSources() throws {
        let pod = try KubeYAML.decode(Pod.self, from: try Fixtures.bytes("pod-env.yaml"))
        let container = try #require(pod.spec?.containers.first)
        let env = try #require(container.env)
        #expect(env.map(\.name) == ["GREETING", "MESSAGE", "POD_NAME", "POD_IP", "MEM_LIMIT", "LOG_LEVEL", "API_TOKEN"])
        #expect(env[1].value == "$(GREETING) from $(POD_NAME)")
        #expect(env[3].valueFrom?.fieldRef?.fieldPath == "status.podIP")
        #expect(env[4].valueFrom?.resourceFieldRef?.resource == "limits.memory")
        #expect(env[5].valueFrom?.configMapKeyRef == KeySelector(name: "app-config", key: "log_level"))
        #expect(env[6].valueFrom?.secretKeyRef?.optional == true)
        #expect(container.envFrom?[1].prefix == "DB_")
        #expect(container.envFrom?[1].secretRef?.name == "db-credentials")
    }

    @Test func hostNetworkAndDNS() throws {
        let pod = try KubeYAML.decode(Pod.self, from: try Fixtures.bytes("pod-host-network.yaml"))
        let spec = try #require(pod.spec)
        #expect(spec.hostNetwork == true)
        #expect(spec.dnsPolicy == .clusterFirstWithHostNet)
        #expect(spec.hostAliases == [HostAlias(ip: "10.0.0.1", hostnames: ["router.local", "gw"])])
        #expect(spec.dnsConfig?.options?.map(\.name) == ["ndots", "edns0"])
        #expect(spec.dnsConfig?.options?.last?.value == nil)
        #expect(spec.containers.first?.ports?.first?.hostPort == 9100)
    }

    @Test func lifecycleHooks() throws {
        let pod = try KubeYAML.decode(Pod.self, from: try Fixtures.bytes("pod-lifecycle.yaml"))
        let containers = try #require(pod.spec?.containers)
        #expect(containers[0].lifecycle?.postStart?.exec?.command?.first == "/bin/sh")
        #expect(containers[0].lifecycle?.preStop?.httpGet?.port == .int(80))
        #expect(containers[0].terminationMessagePolicy == .fallbackToLogsOnError)
        #expect(containers[1].lifecycle?.preStop?.sleep?.seconds == 5)
        #expect(containers[2].lifecycle?.postStart?.tcpSocket?.port == .int(8080))
        #expect(pod.spec?.terminationGracePeriodSeconds == 45)
    }

    @Test func schedulingFields() throws {
        let pod = try KubeYAML.decode(Pod.self, from: try Fixtures.bytes("pod-scheduling.yaml"))
        let spec = try #require(pod.spec)
        #expect(spec.tolerations?.first == {
            var toleration = Toleration(key: "node.kubernetes.io/unreachable", operator: .exists, effect: .noExecute)
            toleration.tolerationSeconds = 300
            return toleration
        }())
        #expect(spec.imagePullSecrets == [LocalObjectReference(name: "regcred")])
        #expect(spec.nodeName == "pi-kitchen")
        #expect(spec.affinity?["nodeAffinity"] != nil)
        #expect(pod.metadata.ownerReferences?.first?.controller == true)
        #expect(pod.metadata.finalizers == ["iotkube.io/cleanup"])
        #expect(spec.containers.first?.resources?.requests?["ephemeral-storage"]?.byteCount == 2_000_000_000)
    }

    @Test func podStatusFromAServer() throws {
        let pod = try KubeJSON.decode(Pod.self, from: try Fixtures.bytes("pod-with-status.json"), validation: .strict)
        let status = try #require(pod.status)
        #expect(status.phase == .running)
        #expect(status.conditions?.count == 5)
        #expect(status.conditions?.first?.lastProbeTime == nil)
        #expect(status.qosClass == .burstable)
        let container = try #require(status.containerStatuses?.first)
        #expect(container.lastState?.terminated?.reason == "OOMKilled")
        #expect(container.lastState?.terminated?.exitCode == 137)
        #expect(container.state?.running?.startedAt == (try Timestamp(rfc3339: "2026-11-20T08:15:08Z")))
        #expect(pod.metadata.managedFields?.count == 1)
        #expect(pod.metadata.creationTimestamp?.description == "2026-11-20T08:15:02Z")
    }

    @Test func clusterObjects() throws {
        let node = try KubeJSON.decode(Node.self, from: try Fixtures.bytes("node.json"), validation: .strict)
        #expect(node.status?.capacity?["memory"]?.byteCount == Int64(3_884_140 * 1024))
        #expect(node.status?.allocatable?["ephemeral-storage"]?.byteCount == 29_565_618_608)
        #expect(node.status?.daemonEndpoints?.kubeletEndpoint?.port == 10250)
        #expect(node.status?.nodeInfo?.architecture == "arm64")
        #expect(node.spec?.taints?.first?.effect == .preferNoSchedule)

        let lease = try KubeYAML.decode(Lease.self, from: try Fixtures.bytes("lease.yaml"), validation: .strict)
        #expect(lease.spec?.renewTime?.description == "2026-11-20T08:20:10.123456Z")
        #expect(lease.spec?.leaseDurationSeconds == 40)

        let event = try KubeYAML.decode(Event.self, from: try Fixtures.bytes("event.yaml"), validation: .strict)
        #expect(event.involvedObject.fieldPath == "spec.containers{web}")
        #expect(event.count == 6)

        let csr = try KubeYAML.decode(CertificateSigningRequest.self, from: try Fixtures.bytes("csr.yaml"), validation: .strict)
        #expect(csr.spec.request.text.hasPrefix("-----BEGIN CERTIFICATE REQUEST-----"))
        #expect(csr.spec.signerName == "kubernetes.io/kube-apiserver-client-kubelet")
        #expect(csr.status?.conditions?.first?.type == "Approved")

        let trees = try Fixtures.trees("configmap-secret.yaml")
        #expect(trees.count == 3)
        let configMap = try KubeJSON.decode(ConfigMap.self, from: trees[0], validation: .strict)
        #expect(configMap.data?["app.properties"] == "mode=edge\ninterval=10s\n")
        #expect(configMap.binaryData?["logo.bin"]?.bytes.prefix(4) == [0x89, 0x50, 0x4E, 0x47])
        let secret = try KubeJSON.decode(Secret.self, from: trees[1], validation: .strict)
        #expect(secret.data?[".dockerconfigjson"]?.text.contains("registry.local:5000") == true)
        let namespace = try KubeJSON.decode(Namespace.self, from: trees[2], validation: .strict)
        #expect(namespace.status?.phase == "Active")
    }
}
