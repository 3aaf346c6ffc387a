/// kube-apiserver's `ValidateEndpointSlice`: bounded lists, addresses of the slice's type,
/// valid ports. The agent's proxy reads slices from any API server, so it checks again.
public enum EndpointSliceValidation {
    public static let maxEndpoints = 1000
    public static let maxAddresses = 100
    public static let maxPorts = 100

    public static func problems(_ slice: EndpointSlice) -> [StatusCause] {
        var problems = FieldProblems()
        var causes: [StatusCause] = []
        let types = ["FQDN", "IPv4", "IPv6"]
        if let type = slice.addressType {
            if !types.contains(type) {
                causes.append(StatusCause(reason: "FieldValueNotSupported", message: "Unsupported value: \"\(type.prefix(64))\": supported values: \"FQDN\", \"IPv4\", \"IPv6\"", field: "addressType"))
            }
        } else {
            causes.append(StatusCause(reason: "FieldValueRequired", message: "Required value", field: "addressType"))
        }
        if slice.endpointList.count > maxEndpoints {
            causes.append(tooMany("endpoints", slice.endpointList.count, maxEndpoints))
        }
        for (index, endpoint) in slice.endpointList.prefix(maxEndpoints).enumerated() {
            let field = "endpoints[\(index)]"
            if endpoint.addresses.isEmpty {
                causes.append(StatusCause(reason: "FieldValueRequired", message: "Required value: must contain at least 1 address", field: "\(field).addresses"))
            } else if endpoint.addresses.count > maxAddresses {
                causes.append(tooMany("\(field).addresses", endpoint.addresses.count, maxAddresses))
            }
            for (position, address) in endpoint.addresses.prefix(maxAddresses).enumerated() where slice.addressType == "IPv4" {
                if let problem = IPv4Network.endpointAddressProblem(address) { problems.invalid("\(field).addresses[\(position)]", "\"\(address.prefix(64))\"", problem) }
            }
            if let node = endpoint.nodeName, let problem = NameValidation.dnsSubdomainProblem(node) {
                problems.invalid("\(field).nodeName", "\"\(node.prefix(64))\"", problem)
            }
            if let hostname = endpoint.hostname, let problem = NameValidation.dnsLabelProblem(hostname) {
                problems.invalid("\(field).hostname", "\"\(hostname.prefix(64))\"", problem)
            }
        }
        let ports = slice.ports ?? []
        if ports.count > maxPorts { causes.append(tooMany("ports", ports.count, maxPorts)) }
        var names = Set<String>()
        for (index, port) in ports.prefix(maxPorts).enumerated() {
            let field = "ports[\(index)]"
            let name = port.name ?? ""
            if !name.isEmpty, let problem = NameValidation.dnsLabelProblem(name) { problems.invalid("\(field).name", "\"\(name.prefix(64))\"", problem) }
            if !names.insert(name).inserted {
                causes.append(StatusCause(reason: "FieldValueDuplicate", message: "Duplicate value: \"\(name.prefix(64))\"", field: "\(field).name"))
            }
            if let number = port.port, !(1...65535).contains(number) {
                problems.invalid("\(field).port", "\(number)", "must be between 1 and 65535, inclusive")
            }
            if let portProtocol = port.protocol, !ServiceValidation.protocols.contains(portProtocol) {
                causes.append(StatusCause(reason: "FieldValueNotSupported", message: "Unsupported value: \"\(portProtocol.prefix(64))\": supported values: \"SCTP\", \"TCP\", \"UDP\"", field: "\(field).protocol"))
            }
        }
        return causes + problems.causes
    }

    private static func tooMany(_ field: String, _ count: Int, _ limit: Int) -> StatusCause {
        StatusCause(reason: "FieldValueTooMany", message: "Too many: \(count): must have at most \(limit) items", field: field)
    }
}
