import KubeModel

/// Server-side validation: names and the rules of each kind, reported as Kubernetes `Invalid` causes.
enum ObjectValidation {
    /// Checks an object about to be stored; throws 422 Invalid listing every problem.
    static func validate(_ object: JSONValue, resource: ResourceType) throws {
        let name = object.string(at: ["metadata", "name"]) ?? ""
        var causes: [StatusCause] = []
        if let problem = nameProblem(name, resource: resource) {
            causes.append(StatusCause(reason: "FieldValueInvalid", message: "Invalid value: \"\(name)\": \(problem)", field: "metadata.name"))
        }
        for (key, _) in object[path: ["metadata", "labels"]]?.objectValue.map({ $0.map { ($0.key, $0.value) } }) ?? [] {
            if let problem = NameValidation.qualifiedNameProblem(key) {
                causes.append(StatusCause(reason: "FieldValueInvalid", message: "Invalid value: \"\(key)\": \(problem)", field: "metadata.labels"))
            }
        }
        if resource == .pods, let pod = try? KubeJSON.decode(Pod.self, from: object) {
            causes += PodValidation.problems(pod)
        }
        if resource == .nodes, let node = try? KubeJSON.decode(Node.self, from: object) {
            causes += ClusterObjectValidation.problems(node)
        }
        if resource == .leases, let lease = try? KubeJSON.decode(Lease.self, from: object) {
            causes += ClusterObjectValidation.problems(lease)
        }
        if resource == .certificateSigningRequests, let request = try? KubeJSON.decode(CertificateSigningRequest.self, from: object) {
            causes += ClusterObjectValidation.problems(request)
        }
        if resource == .replicaSets, let replicaSet = try? KubeJSON.decode(ReplicaSet.self, from: object) {
            causes += WorkloadValidation.problems(replicaSet)
        }
        if resource == .deployments, let deployment = try? KubeJSON.decode(Deployment.self, from: object) {
            causes += WorkloadValidation.problems(deployment)
        }
        if resource == .jobs, let job = try? KubeJSON.decode(Job.self, from: object) {
            causes += BatchValidation.problems(job)
        }
        if resource == .cronJobs, let cronJob = try? KubeJSON.decode(CronJob.self, from: object) {
            causes += BatchValidation.problems(cronJob)
            if let zone = cronJob.spec?.timeZone, ZoneRules.load(zone) == nil {
                causes.append(StatusCause(reason: "FieldValueInvalid", message: "Invalid value: \"\(zone.prefix(64))\": unknown time zone \(zone.prefix(64))", field: "spec.timeZone"))
            }
        }
        if [.deployments, .replicaSets, .daemonSets, .jobs].contains(resource) {
            // Controllers do arithmetic on these counts: none may be negative (kube's status validation).
            for member in object["status"]?.objectValue ?? JSONObject() {
                if case .number(let literal) = member.value, let value = Int64(literal), value < 0 {
                    causes.append(StatusCause(reason: "FieldValueInvalid", message: "Invalid value: \(value): must be greater than or equal to 0", field: "status.\(member.key)"))
                }
            }
        }
        if resource == .daemonSets, let daemonSet = try? KubeJSON.decode(DaemonSet.self, from: object) {
            causes += WorkloadValidation.problems(daemonSet)
        }
        if resource == .services, let service = try? KubeJSON.decode(KubeService.self, from: object) {
            causes += ServiceValidation.problems(service)
        }
        if resource == .endpointSlices, let slice = try? KubeJSON.decode(EndpointSlice.self, from: object) {
            causes += EndpointSliceValidation.problems(slice)
        }
        if resource == .controllerRevisions, let revision = object.int64(at: ["revision"]), revision < 0 {
            causes.append(StatusCause(reason: "FieldValueInvalid", message: "Invalid value: \(revision): must be greater than or equal to 0", field: "revision"))
        }
        if !causes.isEmpty { throw APIError.invalid(resource, name, causes) }
    }

    /// Rules of an update beyond those of the new object alone: a workload's selector is fixed.
    static func validateUpdate(old: JSONValue, new: JSONValue, resource: ResourceType) throws {
        if resource == .controllerRevisions {
            // A revision's data never changes (its number does, when a rollback makes it current again).
            for field in ["data"] where old[field] != new[field] {
                throw APIError.invalid(resource, new.string(at: ["metadata", "name"]) ?? "", [StatusCause(reason: "FieldValueInvalid", message: "Invalid value: \(field): field is immutable", field: field)])
            }
            return
        }
        if resource == .services, let oldService = try? KubeJSON.decode(KubeService.self, from: old), let newService = try? KubeJSON.decode(KubeService.self, from: new) {
            let causes = ServiceValidation.updateProblems(old: oldService, new: newService)
            if !causes.isEmpty { throw APIError.invalid(resource, new.string(at: ["metadata", "name"]) ?? "", causes) }
            return
        }
        if resource == .jobs, let oldJob = try? KubeJSON.decode(Job.self, from: old), let newJob = try? KubeJSON.decode(Job.self, from: new) {
            let causes = BatchValidation.updateProblems(old: oldJob, new: newJob)
            if !causes.isEmpty { throw APIError.invalid(resource, new.string(at: ["metadata", "name"]) ?? "", causes) }
            return
        }
        guard resource == .replicaSets || resource == .deployments || resource == .daemonSets else { return }
        let oldSelector = old[path: ["spec", "selector"]].flatMap { try? KubeJSON.decode(LabelSelector.self, from: $0) }
        let newSelector = new[path: ["spec", "selector"]].flatMap { try? KubeJSON.decode(LabelSelector.self, from: $0) }
        let causes = WorkloadValidation.updateProblems(oldSelector: oldSelector, newSelector: newSelector)
        if !causes.isEmpty { throw APIError.invalid(resource, new.string(at: ["metadata", "name"]) ?? "", causes) }
    }

    /// Namespace names are DNS-1123 labels; the other resources here use DNS subdomains.
    static func nameProblem(_ name: String, resource: ResourceType) -> String? {
        if name.isEmpty { return "name or generateName is required" }
        if resource == .namespaces { return NameValidation.dnsLabelProblem(name) }
        if resource == .services { return ServiceValidation.dns1035LabelProblem(name) }
        if resource == .nodes || resource == .pods || resource == .configMaps || resource == .secrets || resource == .leases
            || resource == .serviceAccounts || resource == .certificateSigningRequests || resource == .events
            || resource == .replicaSets || resource == .deployments || resource == .daemonSets || resource == .controllerRevisions || resource == .jobs || resource == .cronJobs
            || resource == .endpointSlices {
            return NameValidation.dnsSubdomainProblem(name)
        }
        return nil
    }
}
