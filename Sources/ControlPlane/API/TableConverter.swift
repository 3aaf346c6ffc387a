import KubeModel

/// Builds the `meta.k8s.io/v1` Table that `kubectl get` prints, with the usual columns per kind.
enum TableConverter {
    static func table(_ resource: ResourceType, items: [JSONValue], listRevision: Int64?, continueToken: String?, now: Timestamp) -> Table {
        var table = Table(columns: columns(resource), rows: items.map { row(resource, $0, now: now) })
        table.listMetadata = ListMeta(resourceVersion: listRevision.map(String.init), continueToken: continueToken)
        return table
    }

    static func columns(_ resource: ResourceType) -> [TableColumnDefinition] {
        let name = TableColumnDefinition(name: "Name", format: "name", description: "Name must be unique within a namespace.")
        let age = TableColumnDefinition(name: "Age", description: "The time since the object was created.")
        switch resource.plural {
        case "pods":
            return [name, TableColumnDefinition(name: "Ready", description: "The number of containers ready."),
                    TableColumnDefinition(name: "Status", description: "The aggregate pod status."),
                    TableColumnDefinition(name: "Restarts", type: "string", description: "The number of container restarts."),
                    age,
                    TableColumnDefinition(name: "IP", description: "The pod IP.", priority: 1),
                    TableColumnDefinition(name: "Node", description: "The node the pod runs on.", priority: 1)]
        case "nodes":
            return [name, TableColumnDefinition(name: "Status", description: "The readiness of the node."),
                    TableColumnDefinition(name: "Roles", description: "The roles of the node."), age,
                    TableColumnDefinition(name: "Version", description: "The agent version."),
                    TableColumnDefinition(name: "Internal-IP", priority: 1), TableColumnDefinition(name: "External-IP", priority: 1),
                    TableColumnDefinition(name: "OS-Image", priority: 1), TableColumnDefinition(name: "Kernel-Version", priority: 1),
                    TableColumnDefinition(name: "Container-Runtime", priority: 1)]
        case "namespaces":
            return [name, TableColumnDefinition(name: "Status", description: "The phase of the namespace."), age]
        case "leases":
            return [name, TableColumnDefinition(name: "Holder", description: "The holder of the lease."), age]
        case "events":
            return [TableColumnDefinition(name: "Last Seen"), TableColumnDefinition(name: "Type"), TableColumnDefinition(name: "Reason"),
                    TableColumnDefinition(name: "Object"), TableColumnDefinition(name: "Message")]
        case "configmaps", "secrets":
            return [name, TableColumnDefinition(name: "Data", type: "integer", description: "Number of data items."), age]
        case "certificatesigningrequests":
            return [name, age, TableColumnDefinition(name: "SignerName"), TableColumnDefinition(name: "Requestor"),
                    TableColumnDefinition(name: "Condition")]
        case "deployments":
            return [name, TableColumnDefinition(name: "Ready", description: "The ready replicas of the desired ones."),
                    TableColumnDefinition(name: "Up-to-date", type: "integer", description: "Replicas of the current template."),
                    TableColumnDefinition(name: "Available", type: "integer", description: "Replicas available to serve."), age] + workloadWideColumns
        case "replicasets":
            return [name, TableColumnDefinition(name: "Desired", type: "integer", description: "The desired replicas."),
                    TableColumnDefinition(name: "Current", type: "integer", description: "The replicas that exist."),
                    TableColumnDefinition(name: "Ready", type: "integer", description: "The ready replicas."), age] + workloadWideColumns
        case "daemonsets":
            let number = { (title: String, text: String) in TableColumnDefinition(name: title, type: "integer", description: text) }
            return [name, number("Desired", "Nodes that should run the pod."), number("Current", "Nodes that run it."), number("Ready", "Nodes with it ready."),
                    number("Up-to-date", "Nodes with the current template."), number("Available", "Nodes with it available."),
                    TableColumnDefinition(name: "Node Selector", description: "The template's node selector."), age] + workloadWideColumns
        case "jobs":
            return [name, TableColumnDefinition(name: "Status", description: "Complete, Failed, Suspended or Running."),
                    TableColumnDefinition(name: "Completions", description: "Succeeded pods of the needed ones."),
                    TableColumnDefinition(name: "Duration", description: "How long the job ran."), age] + workloadWideColumns
        case "cronjobs":
            return [name, TableColumnDefinition(name: "Schedule", description: "The cron schedule."),
                    TableColumnDefinition(name: "Timezone", description: "The schedule's time zone."),
                    TableColumnDefinition(name: "Suspend", type: "boolean", description: "Whether new runs are suspended."),
                    TableColumnDefinition(name: "Active", type: "integer", description: "Jobs running now."),
                    TableColumnDefinition(name: "Last Schedule", description: "When the schedule last fired."), age] + workloadWideColumns
        case "services":
            return [name, TableColumnDefinition(name: "Type", description: "The type of the service."),
                    TableColumnDefinition(name: "Cluster-IP", description: "The service's cluster address."),
                    TableColumnDefinition(name: "External-IP", description: "Addresses outside the cluster."),
                    TableColumnDefinition(name: "Port(s)", description: "The ports, with their node ports."), age,
                    TableColumnDefinition(name: "Selector", description: "The pods the service routes to.", priority: 1)]
        case "endpointslices":
            return [name, TableColumnDefinition(name: "AddressType", description: "The type of the addresses."),
                    TableColumnDefinition(name: "Ports", description: "The ports of the endpoints."),
                    TableColumnDefinition(name: "Endpoints", description: "The first addresses of the endpoints."), age]
        case "controllerrevisions":
            return [name, TableColumnDefinition(name: "Controller", description: "The owner of the revision."),
                    TableColumnDefinition(name: "Revision", type: "integer", description: "The revision number."), age]
        default:
            return [name, age]
        }
    }

    static let workloadWideColumns = [
        TableColumnDefinition(name: "Containers", description: "The containers of the pod template.", priority: 1),
        TableColumnDefinition(name: "Images", description: "The images of the pod template.", priority: 1),
        TableColumnDefinition(name: "Selector", description: "The pod selector.", priority: 1),
    ]

    /// The wide columns of a workload: its template's containers and images and its selector.
    static func workloadWideCells(_ template: PodTemplateSpec?, _ selector: LabelSelector?) -> [JSONValue] {
        let containers = template?.spec?.containers ?? []
        return [.string(containers.map(\.name).joined(separator: ",")), .string(containers.map { $0.image ?? "" }.joined(separator: ",")),
                .string(selector?.queryText ?? "<none>")]
    }

    static func row(_ resource: ResourceType, _ object: JSONValue, now: Timestamp) -> TableRow {
        let name = JSONValue.string(object.string(at: ["metadata", "name"]) ?? "")
        let age = JSONValue.string(ageText(object.string(at: ["metadata", "creationTimestamp"]), now: now))
        var partial: JSONValue = ["kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1"]
        partial.set(["metadata"], object["metadata"] ?? [:])
        let cells: [JSONValue]
        switch resource.plural {
        case "pods":
            let pod = try? KubeJSON.decode(Pod.self, from: object)
            let statuses = pod?.status?.containerStatuses ?? []
            let total = pod?.spec?.containers.count ?? 0
            let ready = statuses.filter(\.ready).count
            let restarts = statuses.reduce(0) { $0 + Int($1.restartCount) }
            cells = [name, .string("\(ready)/\(total)"), .string(pod.map(podStatusText) ?? "Unknown"), .string(String(restarts)), age,
                     .string(pod?.status?.podIP ?? "<none>"), .string(pod?.spec?.nodeName ?? "<none>")]
        case "nodes":
            let node = try? KubeJSON.decode(Node.self, from: object)
            let ready = node?.status?.conditions?.first { $0.type == "Ready" }
            var status = ready?.status == .true ? "Ready" : (ready?.status == .false ? "NotReady" : "Unknown")
            if node?.spec?.unschedulable == true { status += ",SchedulingDisabled" }
            let roles = (node?.metadata.labels ?? [:]).keys.compactMap { key -> String? in
                key.hasPrefix("node-role.kubernetes.io/") ? String(key.dropFirst("node-role.kubernetes.io/".count)) : nil
            }.sorted()
            let info = node?.status?.nodeInfo
            let address = { (type: String) in node?.status?.addresses?.first { $0.type == type }?.address ?? "<none>" }
            cells = [name, .string(status), .string(roles.isEmpty ? "<none>" : roles.joined(separator: ",")), age,
                     .string(info?.kubeletVersion ?? ""), .string(address("InternalIP")), .string(address("ExternalIP")),
                     .string(info?.osImage ?? ""), .string(info?.kernelVersion ?? ""), .string(info?.containerRuntimeVersion ?? "")]
        case "namespaces":
            cells = [name, .string(object.string(at: ["status", "phase"]) ?? "Active"), age]
        case "leases":
            cells = [name, .string(object.string(at: ["spec", "holderIdentity"]) ?? ""), age]
        case "events":
            let involved = "\((object.string(at: ["involvedObject", "kind"]) ?? "").lowercased())/\(object.string(at: ["involvedObject", "name"]) ?? "")"
            cells = [.string(ageText(object.string(at: ["lastTimestamp"]) ?? object.string(at: ["metadata", "creationTimestamp"]), now: now)),
                     .string(object.string(at: ["type"]) ?? ""), .string(object.string(at: ["reason"]) ?? ""), .string(involved),
                     .string(object.string(at: ["message"]) ?? "")]
        case "configmaps", "secrets":
            let count = (object["data"]?.objectValue?.count ?? 0) + (object["binaryData"]?.objectValue?.count ?? 0)
            cells = [name, .integer(count), age]
        case "certificatesigningrequests":
            let conditions = object[path: ["status", "conditions"]]
            var condition = "Pending"
            if case .array(let items)? = conditions {
                condition = items.compactMap { $0.string(at: ["type"]) }.joined(separator: ",")
                if object[path: ["status", "certificate"]] != nil { condition += ",Issued" }
            }
            cells = [name, age, .string(object.string(at: ["spec", "signerName"]) ?? ""), .string(object.string(at: ["spec", "username"]) ?? ""), .string(condition)]
        case "deployments":
            let deployment = try? KubeJSON.decode(Deployment.self, from: object)
            let status = deployment?.status
            cells = [name, .string("\(status?.readyReplicas ?? 0)/\(deployment?.spec?.replicas ?? 0)"), .integer(Int(status?.updatedReplicas ?? 0)),
                     .integer(Int(status?.availableReplicas ?? 0)), age] + workloadWideCells(deployment?.spec?.template, deployment?.spec?.selector)
        case "replicasets":
            let replicaSet = try? KubeJSON.decode(ReplicaSet.self, from: object)
            let status = replicaSet?.status
            cells = [name, .integer(Int(replicaSet?.spec?.replicas ?? 0)), .integer(Int(status?.replicas ?? 0)), .integer(Int(status?.readyReplicas ?? 0)), age]
                + workloadWideCells(replicaSet?.spec?.template, replicaSet?.spec?.selector)
        case "daemonsets":
            let daemonSet = try? KubeJSON.decode(DaemonSet.self, from: object)
            let status = daemonSet?.status ?? DaemonSetStatus()
            let selector = (daemonSet?.spec?.template?.spec?.nodeSelector ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
            cells = [name, .integer(Int(status.desiredNumberScheduled)), .integer(Int(status.currentNumberScheduled)), .integer(Int(status.numberReady)),
                     .integer(Int(status.updatedNumberScheduled ?? 0)), .integer(Int(status.numberAvailable ?? 0)), .string(selector.isEmpty ? "<none>" : selector), age]
                + workloadWideCells(daemonSet?.spec?.template, daemonSet?.spec?.selector)
        case "jobs":
            let job = try? KubeJSON.decode(Job.self, from: object)
            let conditions = job?.status?.conditions ?? []
            let state = ["Complete", "Failed", "Suspended"].first { type in conditions.contains { $0.type == type && $0.status == .true } } ?? "Running"
            let completions = job?.spec?.completions.map { "\(job?.status?.succeeded ?? 0)/\($0)" } ?? "\(job?.status?.succeeded ?? 0)/1 of \(job?.spec?.parallelism ?? 1)"
            let duration = job?.status?.startTime.map { ageText($0.description, now: job?.status?.completionTime ?? now) } ?? ""
            cells = [name, .string(state), .string(completions), .string(duration), age] + workloadWideCells(job?.spec?.template, job?.spec?.selector)
        case "cronjobs":
            let cronJob = try? KubeJSON.decode(CronJob.self, from: object)
            let last = cronJob?.status?.lastScheduleTime.map { ageText($0.description, now: now) } ?? "<none>"
            cells = [name, .string(cronJob?.spec?.schedule ?? ""), .string(cronJob?.spec?.timeZone ?? "<none>"), .bool(cronJob?.spec?.suspend ?? false),
                     .integer(cronJob?.status?.active?.count ?? 0), .string(last), age]
                + workloadWideCells(cronJob?.spec?.jobTemplate.spec?.template, cronJob?.spec?.jobTemplate.spec?.selector)
        case "services":
            cells = [name] + serviceCells(try? KubeJSON.decode(KubeService.self, from: object), age: age)
        case "endpointslices":
            let slice = try? KubeJSON.decode(EndpointSlice.self, from: object)
            let ports = (slice?.ports ?? []).map { $0.port.map(String.init) ?? "<unset>" }
            let addresses = (slice?.endpointList ?? []).flatMap(\.addresses)
            var endpoints = addresses.prefix(3).joined(separator: ",")
            if addresses.count > 3 { endpoints += " + \(addresses.count - 3) more..." }
            cells = [name, .string(slice?.addressType ?? ""), .string(ports.isEmpty ? "<unset>" : ports.joined(separator: ",")),
                     .string(endpoints.isEmpty ? "<none>" : endpoints), age]
        case "controllerrevisions":
            let owner = (object[path: ["metadata", "ownerReferences"]]?.arrayValue ?? []).first { $0["controller"] == .bool(true) }
            let controller = owner.map { "\(($0.string(at: ["kind"]) ?? "").lowercased()).\(($0.string(at: ["apiVersion"]) ?? "").split(separator: "/").first ?? "")/\($0.string(at: ["name"]) ?? "")" }
            cells = [name, .string(controller ?? "<none>"), .integer(object.int64(at: ["revision"]) ?? 0), age]
        default:
            cells = [name, age]
        }
        return TableRow(cells: cells, object: partial)
    }

    /// A service's TYPE, CLUSTER-IP, EXTERNAL-IP, PORT(S), AGE and SELECTOR cells.
    static func serviceCells(_ service: KubeService?, age: JSONValue) -> [JSONValue] {
        let spec = service?.spec
        let type = service?.serviceType ?? "ClusterIP"
        var external = spec?.externalIPs ?? []
        if type == "ExternalName" { external = [spec?.externalName ?? ""] }
        if type == "LoadBalancer" {
            let ingress = service?.status?.loadBalancer?["ingress"]?.arrayValue ?? []
            external += ingress.compactMap { $0.string(at: ["ip"]) ?? $0.string(at: ["hostname"]) }
            if external.isEmpty { external = ["<pending>"] }
        }
        let ports = (spec?.ports ?? []).map { port in
            (port.nodePort ?? 0) != 0 ? "\(port.port):\(port.nodePort ?? 0)/\(port.protocol ?? "TCP")" : "\(port.port)/\(port.protocol ?? "TCP")"
        }
        let selector = (spec?.selector ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
        return [.string(type), .string(spec?.clusterIP ?? "<none>"), .string(external.isEmpty ? "<none>" : external.joined(separator: ",")),
                .string(ports.isEmpty ? "<none>" : ports.joined(separator: ",")), age, .string(selector.isEmpty ? "<none>" : selector)]
    }

    /// The STATUS column of `kubectl get pods`: a waiting or terminated reason, Terminating, or the phase.
    static func podStatusText(_ pod: Pod) -> String {
        if pod.metadata.deletionTimestamp != nil { return "Terminating" }
        for status in pod.status?.containerStatuses ?? [] {
            if let reason = status.state?.waiting?.reason, !reason.isEmpty { return reason }
            if let terminated = status.state?.terminated, pod.status?.phase != .succeeded {
                return terminated.reason ?? (terminated.signal.map { "Signal:\($0)" } ?? "ExitCode:\(terminated.exitCode)")
            }
        }
        return pod.status?.reason ?? pod.status?.phase?.rawValue ?? "Pending"
    }

    /// A short age like kubectl prints: 45s, 3m12s, 5h, 2d3h.
    static func ageText(_ created: String?, now: Timestamp) -> String {
        guard let created, let time = try? Timestamp(rfc3339: created) else { return "<unknown>" }
        let seconds = max(0, now.seconds - time.seconds)
        switch seconds {
        case ..<120: return "\(seconds)s"
        case ..<600: return "\(seconds / 60)m\(seconds % 60 == 0 ? "" : "\(seconds % 60)s")"
        case ..<10800: return "\(seconds / 60)m"
        case ..<172_800: return "\(seconds / 3600)h"
        default: return "\(seconds / 86400)d"
        }
    }
}
