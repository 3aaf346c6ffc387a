/// kube-apiserver's validation of `batch/v1` Jobs and CronJobs, worded as its 422 causes.
public enum BatchValidation {
    public static func problems(_ job: Job) -> [StatusCause] {
        guard let spec = job.spec else { return [StatusCause(reason: "FieldValueRequired", message: "Required value", field: "spec.template")] }
        return specProblems(spec, path: "spec", selectorRequired: true)
    }

    public static func problems(_ cronJob: CronJob) -> [StatusCause] {
        var causes: [StatusCause] = []
        if let name = cronJob.metadata.name, name.count > 52 {
            causes.append(StatusCause(reason: "FieldValueInvalid", message: "Invalid value: \"\(name)\": must be no more than 52 characters", field: "metadata.name"))
        }
        guard let spec = cronJob.spec else { return causes + [StatusCause(reason: "FieldValueRequired", message: "Required value", field: "spec")] }
        if spec.schedule.isEmpty {
            causes.append(StatusCause(reason: "FieldValueRequired", message: "Required value", field: "spec.schedule"))
        } else {
            do {
                _ = try CronSchedule(parsing: spec.schedule)
            } catch {
                causes.append(StatusCause(reason: "FieldValueInvalid", message: "Invalid value: \"\(spec.schedule.prefix(64))\": \(error.description)", field: "spec.schedule"))
            }
        }
        var problems = FieldProblems()
        problems.atLeast(spec.startingDeadlineSeconds, 0, "spec.startingDeadlineSeconds")
        problems.atLeast(spec.successfulJobsHistoryLimit, 0, "spec.successfulJobsHistoryLimit")
        problems.atLeast(spec.failedJobsHistoryLimit, 0, "spec.failedJobsHistoryLimit")
        causes += problems.causes
        if let policy = spec.concurrencyPolicy, !["Allow", "Forbid", "Replace"].contains(policy) {
            causes.append(StatusCause(reason: "FieldValueNotSupported", message: "Unsupported value: \"\(policy.prefix(64))\": supported values: \"Allow\", \"Forbid\", \"Replace\"",
                                      field: "spec.concurrencyPolicy"))
        }
        if let jobSpec = spec.jobTemplate.spec {
            causes += specProblems(jobSpec, path: "spec.jobTemplate.spec", selectorRequired: false)
            if jobSpec.selector != nil, jobSpec.manualSelector != true {
                // Its jobs would each be refused: the server generates their selectors.
                causes.append(StatusCause(reason: "FieldValueInvalid", message: "Invalid value: \"\(jobSpec.selector?.queryText ?? "")\": `selector` will be auto-generated",
                                          field: "spec.jobTemplate.spec.selector"))
            }
        } else {
            causes.append(StatusCause(reason: "FieldValueRequired", message: "Required value", field: "spec.jobTemplate.spec.template"))
        }
        return causes
    }

    static func specProblems(_ spec: JobSpec, path: String, selectorRequired: Bool) -> [StatusCause] {
        var causes: [StatusCause] = []
        var problems = FieldProblems()
        problems.atLeast(spec.parallelism, 0, "\(path).parallelism")
        problems.atLeast(spec.completions, 0, "\(path).completions")
        problems.atLeast(spec.activeDeadlineSeconds, 1, "\(path).activeDeadlineSeconds")
        problems.atLeast(spec.backoffLimit, 0, "\(path).backoffLimit")
        problems.atLeast(spec.ttlSecondsAfterFinished, 0, "\(path).ttlSecondsAfterFinished")
        causes += problems.causes
        switch spec.completionMode {
        case nil, "NonIndexed": break
        case let other?:
            // Indexed jobs are not run by this server's job controller: refused, not ignored.
            causes.append(StatusCause(reason: "FieldValueNotSupported", message: "Unsupported value: \"\(other.prefix(64))\": supported values: \"NonIndexed\"",
                                      field: "\(path).completionMode"))
        }
        for (value, field) in [(spec.podFailurePolicy != nil, "podFailurePolicy"), (spec.backoffLimitPerIndex != nil, "backoffLimitPerIndex"),
                               (spec.maxFailedIndexes != nil, "maxFailedIndexes")] where value {
            causes.append(StatusCause(reason: "FieldValueForbidden", message: "Forbidden: not supported by this server's job controller", field: "\(path).\(field)"))
        }
        if let selector = spec.selector {
            causes += WorkloadValidation.labelSelectorProblems(selector, field: "\(path).selector")
            if !selector.isEmpty, !selector.matches(spec.template?.metadata?.labels ?? [:]) {
                causes.append(StatusCause(reason: "FieldValueInvalid", message: "Invalid value: \"\(selector.queryText)\": `selector` does not match template `labels`",
                                          field: "\(path).template.metadata.labels"))
            }
        } else if selectorRequired {
            causes.append(StatusCause(reason: "FieldValueRequired", message: "Required value", field: "\(path).selector"))
        }
        guard let template = spec.template, let podSpec = template.spec else {
            causes.append(StatusCause(reason: "FieldValueRequired", message: "Required value", field: "\(path).template.spec.containers"))
            return causes
        }
        var pod = Pod(metadata: template.metadata ?? ObjectMeta(), spec: podSpec)
        pod.metadata.name = pod.metadata.name ?? "template"
        for cause in PodValidation.problems(pod) {
            var moved = cause
            if let field = cause.field { moved.field = field.hasPrefix("spec") ? "\(path).template." + field : "\(path).template.\(field)" }
            causes.append(moved)
        }
        switch podSpec.restartPolicy {
        case .onFailure?, .never?: break
        case nil:
            causes.append(StatusCause(reason: "FieldValueRequired", message: "Required value: valid values: \"OnFailure\", \"Never\"", field: "\(path).template.spec.restartPolicy"))
        case let other?:
            causes.append(StatusCause(reason: "FieldValueNotSupported", message: "Unsupported value: \"\(other.rawValue)\": supported values: \"OnFailure\", \"Never\"",
                                      field: "\(path).template.spec.restartPolicy"))
        }
        return causes
    }

    /// Update rules: the selector, template, completion mode and completions are fixed.
    public static func updateProblems(old: Job, new: Job) -> [StatusCause] {
        var causes: [StatusCause] = []
        func immutable(_ changed: Bool, _ field: String) {
            if changed { causes.append(StatusCause(reason: "FieldValueInvalid", message: "Invalid value: \(field): field is immutable", field: field)) }
        }
        immutable(old.spec?.selector != new.spec?.selector, "spec.selector")
        immutable(old.spec?.template != new.spec?.template, "spec.template")
        immutable(old.spec?.completionMode != new.spec?.completionMode, "spec.completionMode")
        immutable(old.spec?.completions != new.spec?.completions, "spec.completions")
        return causes
    }
}
