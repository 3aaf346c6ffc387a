import KubeModel
import HTTPServing

extension APIServer {
    /// The `scale` subresource (`autoscaling/v1` Scale) of deployments and replica sets:
    /// `kubectl scale` reads and patches it; a change writes the workload's `spec.replicas`.
    func scale(_ verb: String, _ route: RequestRoute, _ request: HTTPRequest) throws -> HTTPResponse {
        let name = route.name ?? ""
        let namespace = try Self.namespace(of: route)
        guard let current = try store.get(route.resource, namespace: namespace, name: name) else { throw APIError.notFound(route.resource, name) }
        switch verb {
        case "get":
            return Self.objectResponse(200, Self.scaleObject(of: current))
        case "update", "patch":
            let requested: JSONValue
            if verb == "update" {
                requested = try Self.body(request)
            } else {
                guard let format = PatchFormat(contentType: request.headers["content-type"] ?? "") else {
                    throw APIError(code: 415, reason: "UnsupportedMediaType", message: "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json")
                }
                let patchBody = try Self.body(HTTPRequest(method: request.method, path: request.path,
                                                          headers: ["content-type": format == .apply ? "application/yaml" : "application/json"], body: request.body))
                let scale = Self.scaleObject(of: current)
                switch format {
                case .merge, .apply: requested = Patch.merge(scale, patchBody)
                case .strategicMerge: requested = try Patch.strategicMerge(scale, patchBody)
                case .json: requested = try Patch.jsonPatch(scale, patchBody)
                }
            }
            if let kind = requested.string(at: ["kind"]), kind != Scale.kind {
                throw APIError.badRequest("the kind of the object (\(kind)) does not match the resource (Scale)")
            }
            let (mode, _) = try Self.fieldValidation(request)
            let scale = try Self.decodeScale(requested, strict: mode == .strict)
            let replicas = scale.spec?.replicas ?? 0
            if replicas < 0 {
                throw APIError.invalid(Self.scaleResource, name, [StatusCause(reason: "FieldValueInvalid",
                    message: "Invalid value: \(replicas): must be greater than or equal to 0", field: "spec.replicas")])
            }
            let stored = try store.update(route.resource, namespace: namespace, name: name, expectedRevision: scale.metadata.resourceVersion) { object in
                guard object.int64(at: ["spec", "replicas"]) != Int64(replicas) else { return nil }
                var next = object
                next.set(["spec", "replicas"], .integer(Int64(replicas)))
                next.set(["metadata", "generation"], .integer((object.int64(at: ["metadata", "generation"]) ?? 1) + 1))
                return next
            }
            return Self.objectResponse(200, Self.scaleObject(of: stored))
        default:
            throw APIError.methodNotAllowed("the server does not allow this method on the requested resource")
        }
    }

    private static func decodeScale(_ tree: JSONValue, strict: Bool) throws -> Scale {
        do {
            return try KubeJSON.decodeReportingUnknownFields(Scale.self, from: tree, validation: strict ? .strict : .discard).value
        } catch {
            throw APIError.badRequest("Scale in version \"v1\" cannot be handled as a Scale: \(error.description)")
        }
    }

    /// The Scale of a workload object: its desired and observed replicas and its selector.
    static func scaleObject(of object: JSONValue) -> JSONValue {
        var metadata = JSONObject()
        for key in ["name", "namespace", "uid", "resourceVersion", "creationTimestamp"] {
            if let value = object[path: ["metadata", key]] { metadata[key] = value }
        }
        let selector = object[path: ["spec", "selector"]].flatMap { try? KubeJSON.decode(LabelSelector.self, from: $0) }
        var status: JSONValue = ["replicas": .integer(object.int64(at: ["status", "replicas"]) ?? 0)]
        if let selector { status.set(["selector"], .string(selector.queryText)) }
        return [
            "kind": "Scale", "apiVersion": "autoscaling/v1", "metadata": .object(metadata),
            "spec": ["replicas": .integer(object.int64(at: ["spec", "replicas"]) ?? 0)], "status": status,
        ]
    }

    static let scaleResource = ResourceType(group: "autoscaling", version: "v1", plural: "scale", singular: "", kind: "Scale", namespaced: true)
}
