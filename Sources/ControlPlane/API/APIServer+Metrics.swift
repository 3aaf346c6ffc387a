import KubeModel
import HTTPServing

extension APIServer {
    /// metrics.k8s.io: reads for `kubectl top`; writes (PUT or POST) by agents for their node and pods.
    func metrics(_ route: RequestRoute, _ request: HTTPRequest, verb: String) throws -> HTTPResponse {
        let now = Timestamp.now()
        switch verb {
        case "get":
            guard let name = route.name, let object = metricsStore.get(route.resource, namespace: route.namespace ?? "", name: name, now: now) else {
                throw APIError.notFound(route.resource, route.name ?? "")
            }
            return Self.objectResponse(200, object)
        case "list":
            let labelSelector = try LabelQuery(parsing: request.query["labelSelector"] ?? "")
            let items = metricsStore.list(route.resource, namespace: route.namespace, now: now).filter { sample in
                // Metrics carry no labels of their own: select on the node's or pod's labels.
                let source: JSONValue?
                if route.resource == .nodeMetrics {
                    source = try? store.get(.nodes, namespace: "", name: sample.string(at: ["metadata", "name"]) ?? "")
                } else {
                    source = try? store.get(.pods, namespace: sample.string(at: ["metadata", "namespace"]) ?? "", name: sample.string(at: ["metadata", "name"]) ?? "")
                }
                return Self.matches(source ?? sample, labelSelector, try! FieldSelector(parsing: "", resource: route.resource))
            }
            return Self.objectResponse(200, [
                "kind": .string(route.resource.kind + "List"), "apiVersion": .string(route.resource.apiVersion),
                "metadata": [:], "items": .array(items),
            ])
        case "create", "update":
            var object = try Self.body(request)
            let name = route.name ?? object.string(at: ["metadata", "name"]) ?? ""
            let namespace = route.resource.namespaced ? try Self.namespace(of: route) : ""
            object.set(["metadata", "name"], .string(name))
            if route.resource.namespaced { object.set(["metadata", "namespace"], .string(namespace)) }
            do {
                if route.resource == .nodeMetrics {
                    var sample = try KubeJSON.decode(NodeMetrics.self, from: object, validation: .strict)
                    sample.setTypeMeta()
                    object = try KubeJSON.tree(sample)
                } else {
                    var sample = try KubeJSON.decode(PodMetrics.self, from: object, validation: .strict)
                    sample.setTypeMeta()
                    object = try KubeJSON.tree(sample)
                }
            } catch let error as KubeDecodingError {
                throw APIError.badRequest("\(route.resource.kind) is invalid: \(error)")
            }
            metricsStore.put(route.resource, namespace: namespace, name: name, object: object)
            return Self.objectResponse(200, object)
        default:
            throw APIError.methodNotAllowed("metrics.k8s.io supports get, list and (for agents) update")
        }
    }
}
