import KubeModel

/// Decodes request bodies into the typed model of a resource (so wrong types and, when asked,
/// unknown fields are rejected), validates them, and normalises them as the API server does
/// (canonical quantities, unknown fields pruned).
struct ResourceCodec {
    /// The normalised object and the unknown fields that were dropped (for warnings).
    struct Decoded {
        var object: JSONValue
        var droppedFields: [String]
    }

    let resource: ResourceType

    func decode(_ tree: JSONValue, validation: FieldValidation) throws -> Decoded {
        let mode: FieldValidation = validation == .strict ? .strict : .discard
        do {
            switch resource.kind {
            case "Pod": return try normalise(Pod.self, tree, mode)
            case "Node": return try normalise(Node.self, tree, mode)
            case "Namespace": return try normalise(Namespace.self, tree, mode)
            case "Event": return try normalise(Event.self, tree, mode)
            case "ConfigMap": return try normalise(ConfigMap.self, tree, mode)
            case "Secret": return try normaliseSecret(tree, mode)
            case "ServiceAccount": return try normalise(ServiceAccount.self, tree, mode)
            case "Lease": return try normalise(Lease.self, tree, mode)
            case "CertificateSigningRequest": return try normalise(CertificateSigningRequest.self, tree, mode)
            case "ReplicaSet": return try normalise(ReplicaSet.self, tree, mode)
            case "Deployment": return try normalise(Deployment.self, tree, mode)
            case "DaemonSet": return try normalise(DaemonSet.self, tree, mode)
            case "Job": return try normalise(Job.self, tree, mode)
            case "CronJob": return try normalise(CronJob.self, tree, mode)
            case "ControllerRevision": return try normalise(ControllerRevision.self, tree, mode)
            case "Service": return try normalise(KubeService.self, tree, mode)
            case "EndpointSlice": return try normalise(EndpointSlice.self, tree, mode)
            default: return Decoded(object: tree, droppedFields: [])
            }
        } catch let error as KubeDecodingError {
            let name = tree.string(at: ["metadata", "name"]) ?? ""
            if error.kind == .unknownField || error.kind == .syntax {
                throw APIError.badRequest("\(resource.kind) in version \"\(resource.version)\" cannot be handled as a \(resource.kind): \(error.description)")
            }
            throw APIError.invalid(resource, name, [StatusCause(reason: "FieldValueInvalid", message: error.message, field: error.path)])
        }
    }

    private func normalise<T: KubeObject>(_ type: T.Type, _ tree: JSONValue, _ mode: FieldValidation) throws -> Decoded {
        let (value, dropped) = try KubeJSON.decodeReportingUnknownFields(type, from: tree, validation: mode)
        var object = value
        object.setTypeMeta()
        return Decoded(object: try KubeJSON.tree(object), droppedFields: dropped)
    }

    /// Secrets: `stringData` is merged into `data` and never stored, as the API server does.
    private func normaliseSecret(_ tree: JSONValue, _ mode: FieldValidation) throws -> Decoded {
        let (value, dropped) = try KubeJSON.decodeReportingUnknownFields(Secret.self, from: tree, validation: mode)
        var secret = value
        secret.setTypeMeta()
        if let stringData = secret.stringData {
            var data = secret.data ?? [:]
            for (key, text) in stringData { data[key] = Base64Bytes(text) }
            secret.data = data
            secret.stringData = nil
        }
        return Decoded(object: try KubeJSON.tree(secret), droppedFields: dropped)
    }
}
