/// kube-apiserver's validation of `apps/v1` ReplicaSets and Deployments, worded as its 422 causes.
public enum WorkloadValidation {
    public static func problems(_ replicaSet: ReplicaSet) -> [StatusCause] {
        guard let spec = replicaSet.spec else { return [required("spec.selector"), required("spec.template")] }
        var causes = replicaCountProblems(spec.replicas, spec.minReadySeconds)
        causes += selectorAndTemplateProblems(spec.selector, spec.template)
        return causes
    }

    public static func problems(_ deployment: Deployment) -> [StatusCause] {
        guard let spec = deployment.spec else { return [required("spec.selector"), required("spec.template")] }
        var causes = replicaCountProblems(spec.replicas, spec.minReadySeconds)
        causes += selectorAndTemplateProblems(spec.selector, spec.template)
        var problems = FieldProblems()
        problems.atLeast(spec.revisionHistoryLimit, 0, "spec.revisionHistoryLimit")
        problems.atLeast(spec.progressDeadlineSeconds, 0, "spec.progressDeadlineSeconds")
        if let deadline = spec.progressDeadlineSeconds, deadline <= spec.minReadySeconds ?? 0 {
            problems.invalid("spec.progressDeadlineSeconds", "\(deadline)", "must be greater than minReadySeconds")
        }
        causes += problems.causes
        causes += strategyProblems(spec.strategy)
        return causes
    }

    public static func problems(_ daemonSet: DaemonSet) -> [StatusCause] {
        guard let spec = daemonSet.spec else { return [required("spec.selector"), required("spec.template")] }
        var causes = replicaCountProblems(nil, spec.minReadySeconds)
        causes += selectorAndTemplateProblems(spec.selector, spec.template)
        var problems = FieldProblems()
        problems.atLeast(spec.revisionHistoryLimit, 0, "spec.revisionHistoryLimit")
        causes += problems.causes
        guard let strategy = spec.updateStrategy else { return causes }
        switch strategy.type {
        case "OnDelete", nil:
            break
        case "RollingUpdate":
            guard let rolling = strategy.rollingUpdate else {
                causes.append(required("spec.updateStrategy.rollingUpdate"))
                break
            }
            let unavailableField = "spec.updateStrategy.rollingUpdate.maxUnavailable"
            let surgeField = "spec.updateStrategy.rollingUpdate.maxSurge"
            causes += intOrPercentProblems(rolling.maxUnavailable, unavailableField, atMost100: true)
            causes += intOrPercentProblems(rolling.maxSurge, surgeField, atMost100: true)
            let hasUnavailable = !isZero(rolling.maxUnavailable) && rolling.maxUnavailable != nil
            let hasSurge = !isZero(rolling.maxSurge) && rolling.maxSurge != nil
            if hasUnavailable && hasSurge {
                causes.append(StatusCause(reason: "FieldValueInvalid", message: "Invalid value: \"\(rolling.maxSurge!)\": may not be set when maxUnavailable is non-zero", field: surgeField))
            } else if !hasUnavailable && !hasSurge {
                causes.append(StatusCause(reason: "FieldValueRequired", message: "Required value: cannot be 0 when maxSurge is 0", field: unavailableField))
            }
        case let other?:
            causes.append(StatusCause(reason: "FieldValueNotSupported", message: "Unsupported value: \"\(other)\": supported values: \"OnDelete\", \"RollingUpdate\"",
                                      field: "spec.updateStrategy.type"))
        }
        return causes
    }

    /// A non-negative integer or a `N%` percent (at most 100% when asked).
    static func intOrPercentProblems(_ value: IntOrString?, _ field: String, atMost100: Bool) -> [StatusCause] {
        guard let value else { return [] }
        var problems = FieldProblems()
        switch value {
        case .int(let number): problems.atLeast(number, 0, field)
        case .string(let text):
            if let percent = value.percent {
                if atMost100, percent > 100 { problems.invalid(field, "\"\(text)\"", "must not be greater than 100%") }
            } else {
                problems.invalid(field, "\"\(text.prefix(64))\"", "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')")
            }
        }
        return problems.causes
    }

    /// Update rules: the selector may not change (apps/v1).
    public static func updateProblems(oldSelector: LabelSelector?, newSelector: LabelSelector?) -> [StatusCause] {
        guard oldSelector != newSelector else { return [] }
        return [StatusCause(reason: "FieldValueInvalid", message: "Invalid value: \(selectorText(newSelector)): field is immutable", field: "spec.selector")]
    }

    static func replicaCountProblems(_ replicas: Int32?, _ minReadySeconds: Int32?) -> [StatusCause] {
        var problems = FieldProblems()
        problems.atLeast(replicas, 0, "spec.replicas")
        problems.atLeast(minReadySeconds, 0, "spec.minReadySeconds")
        return problems.causes
    }

    /// The selector must be valid and non-empty, and select the template's labels; the template
    /// must be a valid pod that always restarts.
    static func selectorAndTemplateProblems(_ selector: LabelSelector?, _ template: PodTemplateSpec?) -> [StatusCause] {
        var causes: [StatusCause] = []
        if let selector {
            causes += labelSelectorProblems(selector, field: "spec.selector")
            if selector.isEmpty {
                causes.append(StatusCause(reason: "FieldValueInvalid", message: "Invalid value: \(selectorText(selector)): empty selector is invalid for deployment",
                                          field: "spec.selector"))
            }
        } else {
            causes.append(required("spec.selector"))
        }
        guard let template, let podSpec = template.spec else {
            causes.append(required("spec.template.spec.containers"))
            return causes
        }
        let labels = template.metadata?.labels ?? [:]
        if let selector, !selector.isEmpty, !selector.matches(labels) {
            let text = "{" + labels.sorted { $0.key < $1.key }.map { "\"\($0.key)\":\"\($0.value)\"" }.joined(separator: ",") + "}"
            causes.append(StatusCause(reason: "FieldValueInvalid", message: "Invalid value: \(text): `selector` does not match template `labels`",
                                      field: "spec.template.metadata.labels"))
        }
        for (key, value) in labels.sorted(by: { $0.key < $1.key }) {
            if let problem = NameValidation.qualifiedNameProblem(key) {
                causes.append(StatusCause(reason: "FieldValueInvalid", message: "Invalid value: \"\(key)\": \(problem)", field: "spec.template.metadata.labels"))
            }
            if let problem = NameValidation.labelValueProblem(value) {
                causes.append(StatusCause(reason: "FieldValueInvalid", message: "Invalid value: \"\(value)\": \(problem)", field: "spec.template.metadata.labels"))
            }
        }
        var pod = Pod(metadata: template.metadata ?? ObjectMeta(), spec: podSpec)
        pod.metadata.name = pod.metadata.name ?? "template"
        for cause in PodValidation.problems(pod) {
            var moved = cause
            if let field = cause.field { moved.field = field.hasPrefix("spec") ? "spec.template." + field : "spec.template.\(field)" }
            causes.append(moved)
        }
        if let policy = podSpec.restartPolicy, policy != .always {
            causes.append(StatusCause(reason: "FieldValueNotSupported", message: "Unsupported value: \"\(policy.rawValue)\": supported values: \"Always\"",
                                      field: "spec.template.spec.restartPolicy"))
        }
        if podSpec.activeDeadlineSeconds != nil {
            causes.append(StatusCause(reason: "FieldValueForbidden", message: "Forbidden: activeDeadlineSeconds in ReplicaSet is not Supported",
                                      field: "spec.template.spec.activeDeadlineSeconds"))
        }
        return causes
    }

    static func strategyProblems(_ strategy: DeploymentStrategy?) -> [StatusCause] {
        guard let strategy else { return [] }
        switch strategy.type {
        case "Recreate":
            if strategy.rollingUpdate != nil {
                return [StatusCause(reason: "FieldValueForbidden", message: "Forbidden: may not be specified when strategy `type` is 'Recreate'",
                                    field: "spec.strategy.rollingUpdate")]
            }
            return []
        case "RollingUpdate", nil:
            guard let rolling = strategy.rollingUpdate else { return [] }
            var problems = FieldProblems()
            for (value, field) in [(rolling.maxUnavailable, "spec.strategy.rollingUpdate.maxUnavailable"), (rolling.maxSurge, "spec.strategy.rollingUpdate.maxSurge")] {
                guard let value else { continue }
                switch value {
                case .int(let number): problems.atLeast(number, 0, field)
                case .string(let text):
                    if value.percent == nil {
                        problems.invalid(field, "\"\(text)\"", "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')")
                    }
                }
            }
            if isZero(rolling.maxUnavailable), isZero(rolling.maxSurge) {
                problems.invalid("spec.strategy.rollingUpdate.maxUnavailable", rolling.maxUnavailable.map { "\"\($0)\"" } ?? "0", "may not be 0 when `maxSurge` is 0")
            }
            if let percent = rolling.maxUnavailable?.percent, percent > 100 {
                problems.invalid("spec.strategy.rollingUpdate.maxUnavailable", "\"\(percent)%\"", "must not be greater than 100%")
            }
            return problems.causes
        case let other?:
            return [StatusCause(reason: "FieldValueNotSupported", message: "Unsupported value: \"\(other)\": supported values: \"Recreate\", \"RollingUpdate\"",
                                field: "spec.strategy.type")]
        }
    }

    private static func isZero(_ value: IntOrString?) -> Bool {
        switch value {
        case .int(0)?: return true
        case .string?: return value?.percent == 0
        default: return false
        }
    }

    /// `metav1` label selector rules: qualified keys, label values, known operators with values
    /// only for In and NotIn.
    public static func labelSelectorProblems(_ selector: LabelSelector, field: String) -> [StatusCause] {
        var causes: [StatusCause] = []
        for (key, value) in (selector.matchLabels ?? [:]).sorted(by: { $0.key < $1.key }) {
            if let problem = NameValidation.qualifiedNameProblem(key) {
                causes.append(StatusCause(reason: "FieldValueInvalid", message: "Invalid value: \"\(key)\": \(problem)", field: "\(field).matchLabels"))
            }
            if let problem = NameValidation.labelValueProblem(value) {
                causes.append(StatusCause(reason: "FieldValueInvalid", message: "Invalid value: \"\(value)\": \(problem)", field: "\(field).matchLabels"))
            }
        }
        for (index, expression) in (selector.matchExpressions ?? []).enumerated() {
            let path = "\(field).matchExpressions[\(index)]"
            let values = expression.values ?? []
            switch expression.operator {
            case "In", "NotIn":
                if values.isEmpty {
                    causes.append(StatusCause(reason: "FieldValueRequired", message: "Required value: must be specified when `operator` is 'In' or 'NotIn'", field: "\(path).values"))
                }
            case "Exists", "DoesNotExist":
                if !values.isEmpty {
                    causes.append(StatusCause(reason: "FieldValueForbidden", message: "Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'", field: "\(path).values"))
                }
            default:
                causes.append(StatusCause(reason: "FieldValueInvalid", message: "Invalid value: \"\(expression.operator)\": not a valid selector operator", field: "\(path).operator"))
            }
            if let problem = NameValidation.qualifiedNameProblem(expression.key) {
                causes.append(StatusCause(reason: "FieldValueInvalid", message: "Invalid value: \"\(expression.key)\": \(problem)", field: "\(path).key"))
            }
            for value in values {
                if let problem = NameValidation.labelValueProblem(value) {
                    causes.append(StatusCause(reason: "FieldValueInvalid", message: "Invalid value: \"\(value)\": \(problem)", field: "\(path).values"))
                }
            }
        }
        return causes
    }

    private static func required(_ field: String) -> StatusCause {
        StatusCause(reason: "FieldValueRequired", message: "Required value", field: field)
    }

    private static func selectorText(_ selector: LabelSelector?) -> String {
        guard let selector else { return "null" }
        return "\"\(selector.queryText)\""
    }
}
