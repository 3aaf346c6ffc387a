/// kube-apiserver's rules for a pod's required node affinity, as 422 causes (the affinity is
/// otherwise kept as it came).
enum NodeAffinityValidation {
    static func problems(_ affinity: JSONValue?) -> [StatusCause] {
        let path = "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution"
        guard let tree = affinity?[path: ["nodeAffinity", "requiredDuringSchedulingIgnoredDuringExecution"]], tree != .null else { return [] }
        guard let selector = try? KubeJSON.decode(NodeSelector.self, from: tree) else {
            return [StatusCause(reason: "FieldValueInvalid", message: "Invalid value: \"object\": must be a node selector with nodeSelectorTerms", field: path)]
        }
        var causes: [StatusCause] = []
        if selector.nodeSelectorTerms.isEmpty {
            causes.append(StatusCause(reason: "FieldValueRequired", message: "Required value: must have at least one node selector term", field: "\(path).nodeSelectorTerms"))
        }
        for (termIndex, term) in selector.nodeSelectorTerms.enumerated() {
            let termPath = "\(path).nodeSelectorTerms[\(termIndex)]"
            for (index, requirement) in (term.matchExpressions ?? []).enumerated() {
                causes += requirementProblems(requirement, "\(termPath).matchExpressions[\(index)]", fields: false)
            }
            for (index, requirement) in (term.matchFields ?? []).enumerated() {
                causes += requirementProblems(requirement, "\(termPath).matchFields[\(index)]", fields: true)
            }
        }
        return causes
    }

    private static func requirementProblems(_ requirement: NodeSelectorRequirement, _ path: String, fields: Bool) -> [StatusCause] {
        var causes: [StatusCause] = []
        let values = requirement.values ?? []
        func add(_ field: String, _ reason: String, _ message: String) { causes.append(StatusCause(reason: reason, message: message, field: "\(path).\(field)")) }
        if fields {
            if requirement.key != "metadata.name" { add("key", "FieldValueNotSupported", "Unsupported value: \"\(requirement.key.prefix(64))\": supported values: \"metadata.name\"") }
            if requirement.operator != "In" && requirement.operator != "NotIn" {
                add("operator", "FieldValueInvalid", "Invalid value: \"\(requirement.operator.prefix(32))\": not a valid selector operator")
            } else if values.count != 1 {
                add("values", "FieldValueRequired", "Required value: must be only one value when `operator` is 'In' or 'NotIn' for node field selector")
            }
            return causes
        }
        if let problem = NameValidation.qualifiedNameProblem(requirement.key) { add("key", "FieldValueInvalid", "Invalid value: \"\(requirement.key.prefix(64))\": \(problem)") }
        switch requirement.operator {
        case "In", "NotIn":
            if values.isEmpty { add("values", "FieldValueRequired", "Required value: must be specified when `operator` is 'In' or 'NotIn'") }
        case "Exists", "DoesNotExist":
            if !values.isEmpty { add("values", "FieldValueForbidden", "Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'") }
        case "Gt", "Lt":
            if values.count != 1 || Int64(values[0]) == nil {
                add("values", "FieldValueRequired", "Required value: must be specified single value when `operator` is 'Lt' or 'Gt'")
            }
        default:
            add("operator", "FieldValueInvalid", "Invalid value: \"\(requirement.operator.prefix(32))\": not a valid selector operator")
        }
        return causes
    }
}
