/// kube-apiserver's `ValidateService` rules for what this cluster serves (IPv4 single-stack),
/// as 422 causes naming the field. Allocation (a free address or node port) is the server's.
public enum ServiceValidation {
    public static let types = ["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"]
    public static let protocols = ["SCTP", "TCP", "UDP"]
    /// The longest `sessionAffinityConfig.clientIP.timeoutSeconds` (a day).
    public static let maxAffinityTimeout: Int32 = 86400
    /// The most ports one service may have (a bound on every proxy's and allocator's work).
    public static let maxPorts = 250

    public static func problems(_ service: KubeService) -> [StatusCause] {
        var problems = FieldProblems()
        var causes: [StatusCause] = []
        let spec = service.spec ?? ServiceSpec()
        let type = service.serviceType
        if !types.contains(type) {
            causes.append(unsupported("spec.type", type, types))
        }
        let ports = spec.ports ?? []
        if ports.isEmpty && !service.isHeadless && type != "ExternalName" {
            causes.append(StatusCause(reason: "FieldValueRequired", message: "Required value", field: "spec.ports"))
        }
        if ports.count > maxPorts {
            causes.append(StatusCause(reason: "FieldValueTooMany", message: "Too many: \(ports.count): must have at most \(maxPorts) items", field: "spec.ports"))
            return causes
        }
        var names = Set<String>()
        var portProtocols = Set<String>()
        for (index, port) in ports.enumerated() {
            let field = "spec.ports[\(index)]"
            if let name = port.name, !name.isEmpty {
                if let problem = NameValidation.dnsLabelProblem(name) { problems.invalid("\(field).name", "\"\(name)\"", problem) }
                if !names.insert(name).inserted {
                    causes.append(StatusCause(reason: "FieldValueDuplicate", message: "Duplicate value: \"\(name)\"", field: "\(field).name"))
                }
            } else if ports.count > 1 {
                causes.append(StatusCause(reason: "FieldValueRequired", message: "Required value", field: "\(field).name"))
            }
            if !(1...65535).contains(port.port) {
                problems.invalid("\(field).port", "\(port.port)", "must be between 1 and 65535, inclusive")
            }
            let portProtocol = port.protocol ?? "TCP"
            if !protocols.contains(portProtocol) { causes.append(unsupported("\(field).protocol", portProtocol, protocols)) }
            if !portProtocols.insert("\(port.port)/\(portProtocol)").inserted {
                causes.append(StatusCause(reason: "FieldValueDuplicate", message: "Duplicate value: \"\(port.port)/\(portProtocol)\"", field: field))
            }
            switch port.targetPort {
            case .int(let number)? where !(1...65535).contains(number):
                problems.invalid("\(field).targetPort", "\(number)", "must be between 1 and 65535, inclusive")
            case .string(let text)? where NameValidation.portNameProblem(text) != nil:
                problems.invalid("\(field).targetPort", "\"\(text.prefix(64))\"", NameValidation.portNameProblem(text) ?? "")
            default: break
            }
            if let nodePort = port.nodePort, nodePort != 0 {
                if type != "NodePort" && type != "LoadBalancer" {
                    causes.append(StatusCause(reason: "FieldValueForbidden", message: "Forbidden: may not be used when `type` is '\(type)'", field: "\(field).nodePort"))
                } else if !(1...65535).contains(nodePort) {
                    problems.invalid("\(field).nodePort", "\(nodePort)", "must be between 1 and 65535, inclusive")
                }
            }
        }
        causes += addressProblems(spec, type: type, problems: &problems)
        for (key, value) in (spec.selector ?? [:]).sorted(by: { $0.key < $1.key }) {
            if let problem = NameValidation.qualifiedNameProblem(key) { problems.invalid("spec.selector", "\"\(key.prefix(64))\"", problem) }
            if let problem = NameValidation.labelValueProblem(value) { problems.invalid("spec.selector", "\"\(value.prefix(64))\"", problem) }
        }
        let affinity = spec.sessionAffinity ?? "None"
        if !["ClientIP", "None"].contains(affinity) { causes.append(unsupported("spec.sessionAffinity", affinity, ["ClientIP", "None"])) }
        if let timeout = spec.sessionAffinityConfig?.clientIP?.timeoutSeconds {
            if affinity != "ClientIP" {
                problems.invalid("spec.sessionAffinityConfig", "\(timeout)", "must not be set when session affinity is None")
            } else if !(1...maxAffinityTimeout).contains(timeout) {
                problems.invalid("spec.sessionAffinityConfig.clientIP.timeoutSeconds", "\(timeout)", "must be greater than 0 and less than \(maxAffinityTimeout)")
            }
        }
        if let policy = spec.externalTrafficPolicy {
            if type != "NodePort" && type != "LoadBalancer" {
                problems.invalid("spec.externalTrafficPolicy", "\"\(policy.prefix(64))\"", "may only be set when `type` is 'NodePort' or 'LoadBalancer'")
            } else if !["Cluster", "Local"].contains(policy) {
                causes.append(unsupported("spec.externalTrafficPolicy", policy, ["Cluster", "Local"]))
            }
        }
        if let policy = spec.internalTrafficPolicy, !["Cluster", "Local"].contains(policy) {
            causes.append(unsupported("spec.internalTrafficPolicy", policy, ["Cluster", "Local"]))
        }
        if let check = spec.healthCheckNodePort, check != 0 {
            if !(spec.externalTrafficPolicy == "Local" && type == "LoadBalancer") {
                problems.invalid("spec.healthCheckNodePort", "\(check)", "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'")
            } else if !(1...65535).contains(check) {
                problems.invalid("spec.healthCheckNodePort", "\(check)", "must be between 1 and 65535, inclusive")
            }
        }
        return causes + problems.causes
    }

    /// Cluster, external and external-name addresses: IPv4 only, `None` only where headless is possible.
    private static func addressProblems(_ spec: ServiceSpec, type: String, problems: inout FieldProblems) -> [StatusCause] {
        var causes: [StatusCause] = []
        if type == "ExternalName" {
            let name = spec.externalName ?? ""
            if name.isEmpty {
                causes.append(StatusCause(reason: "FieldValueRequired", message: "Required value", field: "spec.externalName"))
            } else if let problem = NameValidation.dnsSubdomainProblem(name.hasSuffix(".") ? String(name.dropLast()) : name) {
                problems.invalid("spec.externalName", "\"\(name.prefix(64))\"", problem)
            }
            if let address = spec.clusterIP, !address.isEmpty {
                causes.append(StatusCause(reason: "FieldValueForbidden", message: "Forbidden: may not be set for ExternalName services", field: "spec.clusterIPs"))
            }
            return causes
        }
        if let name = spec.externalName, !name.isEmpty {
            problems.invalid("spec.externalName", "\"\(name.prefix(64))\"", "may only be set when `type` is 'ExternalName'")
        }
        if let address = spec.clusterIP, !address.isEmpty {
            if address == "None" {
                if type == "NodePort" || type == "LoadBalancer" {
                    problems.invalid("spec.clusterIPs[0]", "\"None\"", "may not be set to 'None' for \(type) services")
                }
            } else if !IPv4Network.isCanonicalAddress(address) {
                problems.invalid("spec.clusterIPs[0]", "\"\(address.prefix(64))\"", "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)")
            }
        }
        if let addresses = spec.clusterIPs, !addresses.isEmpty {
            if addresses.count > 1 {
                problems.invalid("spec.clusterIPs", "\(addresses.count) addresses", "this cluster is not configured for dual-stack services")
            } else if let address = spec.clusterIP, !address.isEmpty, addresses[0] != address {
                problems.invalid("spec.clusterIPs[0]", "\"\(addresses[0].prefix(64))\"", "must match `clusterIP`")
            }
        }
        for (index, family) in (spec.ipFamilies ?? []).enumerated() where family != "IPv4" {
            problems.invalid("spec.ipFamilies[\(index)]", "\"\(family.prefix(64))\"", "not configured on this cluster")
        }
        if let policy = spec.ipFamilyPolicy {
            if policy == "RequireDualStack" {
                problems.invalid("spec.ipFamilyPolicy", "\"RequireDualStack\"", "this cluster is not configured for dual-stack services")
            } else if !["SingleStack", "PreferDualStack"].contains(policy) {
                causes.append(unsupported("spec.ipFamilyPolicy", policy, ["PreferDualStack", "RequireDualStack", "SingleStack"]))
            }
        }
        if (spec.externalIPs ?? []).count > maxPorts {
            causes.append(StatusCause(reason: "FieldValueTooMany", message: "Too many: \((spec.externalIPs ?? []).count): must have at most \(maxPorts) items", field: "spec.externalIPs"))
        }
        for (index, address) in (spec.externalIPs ?? []).prefix(maxPorts).enumerated() {
            if let problem = IPv4Network.endpointAddressProblem(address) { problems.invalid("spec.externalIPs[\(index)]", "\"\(address.prefix(64))\"", problem) }
        }
        return causes
    }

    /// Changes an update may not make: the cluster address stays (unless the type moves to or
    /// from ExternalName, which has none). An update without one keeps the old (the allocator
    /// copies it).
    public static func updateProblems(old: KubeService, new: KubeService) -> [StatusCause] {
        guard old.serviceType != "ExternalName", new.serviceType != "ExternalName" else { return [] }
        let oldAddress = old.spec?.clusterIP ?? ""
        let newAddress = new.spec?.clusterIP ?? ""
        guard !oldAddress.isEmpty, !newAddress.isEmpty, oldAddress != newAddress else { return [] }
        return [StatusCause(reason: "FieldValueInvalid", message: "Invalid value: [\"\(newAddress.prefix(64))\"]: may not change once set", field: "spec.clusterIPs[0]")]
    }

    /// Service names are DNS-1035 labels (they become DNS names and environment variables).
    public static func dns1035LabelProblem(_ text: String) -> String? {
        let bytes = Array(text.utf8)
        let valid = !bytes.isEmpty && bytes.count <= 63 && bytes.allSatisfy { ($0 >= 97 && $0 <= 122) || ($0 >= 48 && $0 <= 57) || $0 == 45 }
            && (97...122).contains(bytes[0]) && bytes.last != 45
        if valid { return nil }
        if bytes.count > 63 { return "must be no more than 63 characters" }
        return "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
    }

    private static func unsupported(_ field: String, _ value: String, _ supported: [String]) -> StatusCause {
        StatusCause(reason: "FieldValueNotSupported", message: "Unsupported value: \"\(value.prefix(64))\": supported values: \(supported.map { "\"\($0)\"" }.joined(separator: ", "))", field: field)
    }
}
