import FoundationEssentials
import KubeModel

/// Defaults the API server fills in, so stored objects look as they do in Kubernetes.
enum ResourceDefaults {
    static func apply(_ object: JSONValue, resource: ResourceType) -> JSONValue {
        if resource == .namespaces {
            var namespace = object
            if namespace.string(at: ["status", "phase"]) == nil { namespace.set(["status", "phase"], "Active") }
            if namespace[path: ["spec", "finalizers"]] == nil { namespace.set(["spec", "finalizers"], ["kubernetes"]) }
            return namespace
        }
        if resource == .deployments, var deployment = try? KubeJSON.decode(Deployment.self, from: object), var spec = deployment.spec {
            spec.replicas = spec.replicas ?? 1
            var strategy = spec.strategy ?? DeploymentStrategy()
            strategy.type = strategy.type ?? "RollingUpdate"
            if strategy.type == "RollingUpdate" {
                var rolling = strategy.rollingUpdate ?? RollingUpdateDeployment()
                rolling.maxUnavailable = rolling.maxUnavailable ?? "25%"
                rolling.maxSurge = rolling.maxSurge ?? "25%"
                strategy.rollingUpdate = rolling
            }
            spec.strategy = strategy
            spec.revisionHistoryLimit = spec.revisionHistoryLimit ?? 10
            spec.progressDeadlineSeconds = spec.progressDeadlineSeconds ?? 600
            spec.template = spec.template.map(defaultTemplate)
            deployment.spec = spec
            return (try? KubeJSON.tree(deployment)) ?? object
        }
        if resource == .daemonSets, var daemonSet = try? KubeJSON.decode(DaemonSet.self, from: object), var spec = daemonSet.spec {
            var strategy = spec.updateStrategy ?? DaemonSetUpdateStrategy()
            strategy.type = strategy.type ?? "RollingUpdate"
            if strategy.type == "RollingUpdate" {
                var rolling = strategy.rollingUpdate ?? RollingUpdateDaemonSet()
                rolling.maxUnavailable = rolling.maxUnavailable ?? 1
                rolling.maxSurge = rolling.maxSurge ?? 0
                strategy.rollingUpdate = rolling
            }
            spec.updateStrategy = strategy
            spec.revisionHistoryLimit = spec.revisionHistoryLimit ?? 10
            spec.template = spec.template.map(defaultTemplate)
            daemonSet.spec = spec
            return (try? KubeJSON.tree(daemonSet)) ?? object
        }
        if resource == .jobs, var job = try? KubeJSON.decode(Job.self, from: object), var spec = job.spec {
            spec = defaultJobSpec(spec)
            if (job.metadata.labels ?? [:]).isEmpty, let labels = spec.template?.metadata?.labels, !labels.isEmpty { job.metadata.labels = labels }
            job.spec = spec
            return (try? KubeJSON.tree(job)) ?? object
        }
        if resource == .cronJobs, var cronJob = try? KubeJSON.decode(CronJob.self, from: object), var spec = cronJob.spec {
            spec.concurrencyPolicy = spec.concurrencyPolicy ?? "Allow"
            spec.suspend = spec.suspend ?? false
            spec.successfulJobsHistoryLimit = spec.successfulJobsHistoryLimit ?? 3
            spec.failedJobsHistoryLimit = spec.failedJobsHistoryLimit ?? 1
            let template = spec.jobTemplate.spec?.template.map(defaultTemplate)
            spec.jobTemplate.spec?.template = template
            cronJob.spec = spec
            return (try? KubeJSON.tree(cronJob)) ?? object
        }
        if resource == .services, let service = try? KubeJSON.decode(KubeService.self, from: object) {
            return (try? KubeJSON.tree(defaultService(service))) ?? object
        }
        if resource == .replicaSets, var replicaSet = try? KubeJSON.decode(ReplicaSet.self, from: object), var spec = replicaSet.spec {
            spec.replicas = spec.replicas ?? 1
            spec.template = spec.template.map(defaultTemplate)
            if (replicaSet.metadata.labels ?? [:]).isEmpty { replicaSet.metadata.labels = spec.template?.metadata?.labels }
            replicaSet.spec = spec
            return (try? KubeJSON.tree(replicaSet)) ?? object
        }
        guard resource == .pods, var pod = try? KubeJSON.decode(Pod.self, from: object), var spec = pod.spec else { return object }
        spec = defaultPodSpec(spec)
        spec.enableServiceLinks = spec.enableServiceLinks ?? true
        // The Priority admission plugin's built-in classes (no PriorityClass objects here).
        spec.priority = spec.priority ?? builtinPriorities[spec.priorityClassName ?? ""] ?? 0
        spec.serviceAccountName = spec.serviceAccountName ?? "default"
        pod.spec = spec
        var status = pod.status ?? PodStatus()
        status.phase = status.phase ?? .pending
        status.qosClass = status.qosClass ?? qosClass(spec)
        pod.status = status
        return (try? KubeJSON.tree(pod)) ?? object
    }

    /// `SetDefaults_Service` and the REST strategy's: TCP ports aimed at the same port number,
    /// no session affinity (three hours once ClientIP), cluster-wide traffic policies, IPv4
    /// single-stack, and an empty load balancer status.
    static func defaultService(_ input: KubeService) -> KubeService {
        var service = input
        var spec = service.spec ?? ServiceSpec()
        let type = service.serviceType
        spec.type = type
        // `clusterIPs` alone names the address (`clusterIP` is its first element).
        if (spec.clusterIP ?? "").isEmpty, let first = spec.clusterIPs?.first, !first.isEmpty { spec.clusterIP = first }
        spec.sessionAffinity = spec.sessionAffinity ?? "None"
        if spec.sessionAffinity == "ClientIP" {
            var config = spec.sessionAffinityConfig ?? SessionAffinityConfig()
            var clientIP = config.clientIP ?? ClientIPConfig()
            clientIP.timeoutSeconds = clientIP.timeoutSeconds ?? 10800
            config.clientIP = clientIP
            spec.sessionAffinityConfig = config
        }
        spec.ports = spec.ports?.map { port in
            var port = port
            port.protocol = port.protocol ?? "TCP"
            switch port.targetPort {
            case nil, .int(0)?, .string("")?: port.targetPort = .int(port.port)
            default: break
            }
            return port
        }
        if type != "ExternalName" {
            spec.internalTrafficPolicy = spec.internalTrafficPolicy ?? "Cluster"
            spec.ipFamilies = spec.ipFamilies ?? ["IPv4"]
            // PreferDualStack on a single-stack cluster is single-stack.
            spec.ipFamilyPolicy = spec.ipFamilyPolicy ?? "SingleStack"
        }
        if type == "NodePort" || type == "LoadBalancer" { spec.externalTrafficPolicy = spec.externalTrafficPolicy ?? "Cluster" }
        if type == "LoadBalancer" { spec.allocateLoadBalancerNodePorts = spec.allocateLoadBalancerNodePorts ?? true }
        service.spec = spec
        var status = service.status ?? ServiceStatus()
        status.loadBalancer = status.loadBalancer ?? .object(JSONObject())
        service.status = status
        return service
    }

    /// The fields a service's new type has no use for, dropped when they are as the old type
    /// left them (kube's `dropTypeDependentFields`): node ports and the external policy when it
    /// stops being NodePort or LoadBalancer, the cluster address when it becomes ExternalName.
    static func dropTypeDependentFields(old: JSONValue, new: JSONValue) -> JSONValue {
        guard let before = try? KubeJSON.decode(KubeService.self, from: old), var after = try? KubeJSON.decode(KubeService.self, from: new),
              before.serviceType != after.serviceType, var spec = after.spec else { return new }
        let oldSpec = before.spec ?? ServiceSpec()
        let type = after.serviceType
        if type != "NodePort" && type != "LoadBalancer" {
            let oldNodePorts = Set((oldSpec.ports ?? []).compactMap(\.nodePort))
            spec.ports = spec.ports?.map { port in
                var port = port
                if let nodePort = port.nodePort, oldNodePorts.contains(nodePort) { port.nodePort = nil }
                return port
            }
            if spec.externalTrafficPolicy == oldSpec.externalTrafficPolicy { spec.externalTrafficPolicy = nil }
            if spec.healthCheckNodePort == oldSpec.healthCheckNodePort { spec.healthCheckNodePort = nil }
        }
        if type != "LoadBalancer", spec.allocateLoadBalancerNodePorts == oldSpec.allocateLoadBalancerNodePorts { spec.allocateLoadBalancerNodePorts = nil }
        if type == "ExternalName" {
            if spec.clusterIP == oldSpec.clusterIP { spec.clusterIP = nil }
            if spec.clusterIPs == oldSpec.clusterIPs { spec.clusterIPs = nil }
            if spec.ipFamilies == oldSpec.ipFamilies { spec.ipFamilies = nil }
            if spec.ipFamilyPolicy == oldSpec.ipFamilyPolicy { spec.ipFamilyPolicy = nil }
            if spec.internalTrafficPolicy == oldSpec.internalTrafficPolicy { spec.internalTrafficPolicy = nil }
        }
        after.spec = spec
        return (try? KubeJSON.tree(after)) ?? new
    }

    /// `SetDefaults_Job`: one pod to completion unless told otherwise, 6 retries.
    static func defaultJobSpec(_ jobSpec: JobSpec) -> JobSpec {
        var spec = jobSpec
        if spec.completions == nil && spec.parallelism == nil { spec.completions = 1 }
        spec.parallelism = spec.parallelism ?? 1
        spec.backoffLimit = spec.backoffLimit ?? 6
        spec.completionMode = spec.completionMode ?? "NonIndexed"
        spec.suspend = spec.suspend ?? false
        spec.podReplacementPolicy = spec.podReplacementPolicy ?? "TerminatingOrFailed"
        spec.template = spec.template.map(defaultTemplate)
        return spec
    }

    /// The labels a job's pods get and the selector that finds them, from the job's uid (given
    /// here, before it is stored): kube-apiserver's generated selector, unless `manualSelector`.
    /// Returns the job and its uid.
    static func identifyJob(_ object: JSONValue) throws -> (job: JSONValue, uid: String) {
        let uid = UUID().uuidString.lowercased()
        guard var job = try? KubeJSON.decode(Job.self, from: object), var spec = job.spec else { return (object, uid) }
        guard spec.manualSelector != true else { return (object, uid) }
        let name = job.metadata.name ?? ""
        let generated = ["batch.kubernetes.io/controller-uid": uid, "controller-uid": uid, "batch.kubernetes.io/job-name": name, "job-name": name]
        if spec.selector != nil {
            throw APIError.invalid(.jobs, name, [StatusCause(reason: "FieldValueInvalid",
                message: "Invalid value: \"\(spec.selector?.queryText ?? "")\": `selector` will be auto-generated", field: "spec.selector")])
        }
        var template = spec.template ?? PodTemplateSpec()
        var metadata = template.metadata ?? ObjectMeta()
        metadata.labels = (metadata.labels ?? [:]).merging(generated) { $1 }
        template.metadata = metadata
        spec.template = template
        spec.selector = LabelSelector(matchLabels: ["batch.kubernetes.io/controller-uid": uid])
        job.spec = spec
        return (try KubeJSON.tree(job), uid)
    }

    /// The pod spec defaults (`SetDefaults_PodSpec` and the containers'), for pods and templates.
    static func defaultPodSpec(_ podSpec: PodSpec) -> PodSpec {
        var spec = podSpec
        spec.restartPolicy = spec.restartPolicy ?? .always
        spec.dnsPolicy = spec.dnsPolicy ?? .clusterFirst
        spec.terminationGracePeriodSeconds = spec.terminationGracePeriodSeconds ?? 30
        spec.schedulerName = spec.schedulerName ?? "default-scheduler"
        spec.securityContext = spec.securityContext ?? PodSecurityContext()
        spec.initContainers = spec.initContainers.map { $0.map(defaultContainer) }
        spec.containers = spec.containers.map(defaultContainer)
        return spec
    }

    private static func defaultTemplate(_ template: PodTemplateSpec) -> PodTemplateSpec {
        var result = template
        result.spec = result.spec.map(defaultPodSpec)
        return result
    }

    /// The priorities of Kubernetes' built-in PriorityClasses.
    static let builtinPriorities: [String: Int32] = ["system-node-critical": 2_000_001_000, "system-cluster-critical": 2_000_000_000]

    private static func defaultContainer(_ container: Container) -> Container {
        var result = container
        // Always present, as kube-apiserver writes it (`resources: {}`): a template read back
        // and sent again (`kubectl rollout undo`) then equals the one it came from.
        result.resources = result.resources ?? ResourceRequirements()
        result.terminationMessagePath = result.terminationMessagePath ?? "/dev/termination-log"
        result.terminationMessagePolicy = result.terminationMessagePolicy ?? .file
        if result.imagePullPolicy == nil {
            let image = result.image ?? ""
            let lastComponent = image.split(separator: "/").last.map(String.init) ?? image
            let tagged = lastComponent.contains(":") && !lastComponent.hasSuffix(":latest")
            result.imagePullPolicy = tagged || image.contains("@") ? .ifNotPresent : .always
        }
        return result
    }

    /// Guaranteed when every container has equal cpu and memory requests and limits,
    /// BestEffort when none has any, Burstable otherwise.
    static func qosClass(_ spec: PodSpec) -> PodQOSClass {
        let containers = (spec.initContainers ?? []) + spec.containers
        var anySet = false
        var guaranteed = true
        for container in containers {
            let limits = container.resources?.limits ?? [:]
            let requests = container.resources?.requests ?? [:]
            if !limits.isEmpty || !requests.isEmpty { anySet = true }
            for resource in ["cpu", "memory"] {
                guard let limit = limits[resource] else {
                    guaranteed = false
                    continue
                }
                if let request = requests[resource], request != limit { guaranteed = false }
            }
        }
        if !anySet { return .bestEffort }
        return guaranteed ? .guaranteed : .burstable
    }
}
