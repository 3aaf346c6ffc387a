import FoundationEssentials
import KubeModel
import HTTPServing

extension APIServer {
    func create(_ route: RequestRoute, _ request: HTTPRequest, identity: RequestIdentity? = nil) throws -> HTTPResponse {
        if route.resource == .services { return try allocationLock.withLock { _ in try createObject(route, request, identity: identity) } }
        return try createObject(route, request, identity: identity)
    }

    private func createObject(_ route: RequestRoute, _ request: HTTPRequest, identity: RequestIdentity?) throws -> HTTPResponse {
        guard route.subresource == nil else { throw APIError.methodNotAllowed("cannot create a subresource") }
        let namespace = try Self.namespace(of: route)
        var tree = try Self.body(request)
        try checkTypeMeta(tree, route.resource)
        if let bodyNamespace = tree.string(at: ["metadata", "namespace"]), !bodyNamespace.isEmpty, bodyNamespace != namespace, route.resource.namespaced {
            throw APIError.badRequest("the namespace of the provided object does not match the namespace sent on the request")
        }
        if route.resource.namespaced {
            tree.set(["metadata", "namespace"], .string(namespace))
            try Self.checkNamespaceAcceptsContent(namespace, store: store)
        }
        if tree.string(at: ["metadata", "name"]) ?? "" == "", let prefix = tree.string(at: ["metadata", "generateName"]), !prefix.isEmpty {
            tree.set(["metadata", "name"], .string(prefix + Self.randomSuffix()))
        }
        if route.resource == .certificateSigningRequests, let identity {
            // Who asked is the server's to say, not the client's.
            tree.set(["spec", "username"], .string(identity.user))
            tree.set(["spec", "groups"], .array(identity.groups.map(JSONValue.string)))
            tree.set(["status"], nil)
        }
        // A workload's status is its controller's to write; a service's load balancer is no client's to claim.
        if [.deployments, .replicaSets, .daemonSets, .jobs, .cronJobs, .services].contains(route.resource) { tree.set(["status"], nil) }
        // A node password never stays in the request (its hash and verdict are the server's).
        let nodePassword = route.resource == .certificateSigningRequests ? NodePasswords.takePassword(&tree) : nil
        let (mode, warn) = try Self.fieldValidation(request)
        var decoded = try ResourceCodec(resource: route.resource).decode(tree, validation: mode)
        try admitNodeWrite(route, old: nil, new: decoded.object)
        var preassignedUID: String?
        if route.resource == .jobs { (decoded.object, preassignedUID) = try ResourceDefaults.identifyJob(decoded.object) }
        decoded.object = ResourceDefaults.apply(decoded.object, resource: route.resource)
        try ObjectValidation.validate(decoded.object, resource: route.resource)
        let name = decoded.object.string(at: ["metadata", "name"]) ?? ""
        if route.resource == .services { decoded.object = try allocateService(decoded.object, old: nil, namespace: namespace, name: name) }
        if request.query["dryRun"] == "All" { return Self.objectResponse(201, decoded.object) }
        if route.resource == .certificateSigningRequests, let identity {
            // Checked (and a first join's password recorded) only for a request that is stored.
            try NodePasswords(store: store).admit(&decoded.object, password: nodePassword, identity: identity)
        }
        var object = Self.stripServerFields(decoded.object)
        if let preassignedUID { object.set(["metadata", "uid"], .string(preassignedUID)) }
        var stored = try store.create(route.resource, namespace: namespace, name: name, object: object)
        if route.resource == .certificateSigningRequests { stored = try signer?.process(name: name) ?? stored }
        return Self.objectResponse(201, stored, warnings: warn ? decoded.droppedFields.map { "unknown field \"\($0)\"" } : [])
    }

    func update(_ route: RequestRoute, _ request: HTTPRequest) throws -> HTTPResponse {
        let tree = try Self.body(request)
        try checkTypeMeta(tree, route.resource)
        if let bodyName = tree.string(at: ["metadata", "name"]), bodyName != route.name {
            throw APIError.badRequest("the name of the object (\(bodyName)) does not match the name on the URL (\(route.name ?? ""))")
        }
        return try replace(route, request, with: tree, expectedRevision: tree.string(at: ["metadata", "resourceVersion"]),
                           expectedUID: tree.string(at: ["metadata", "uid"]), created: false)
    }

    func patch(_ route: RequestRoute, _ request: HTTPRequest) throws -> HTTPResponse {
        guard let format = PatchFormat(contentType: request.headers["content-type"] ?? "") else {
            throw APIError(code: 415, reason: "UnsupportedMediaType", message: "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json")
        }
        let patchBody = try Self.body(HTTPRequest(method: request.method, path: request.path, headers: ["content-type": format == .apply ? "application/yaml" : "application/json"], body: request.body))
        let name = route.name ?? ""
        let namespace = try Self.namespace(of: route)
        guard let current = try store.get(route.resource, namespace: namespace, name: name) else {
            if format == .apply && route.subresource == nil {
                // Server-side apply creates what does not exist.
                var createRequest = request
                createRequest.headers["content-type"] = "application/json"
                var body = patchBody
                body.set(["metadata", "name"], .string(name))
                createRequest.body = KubeJSON.serialize(body)
                return try create(RequestRoute(resource: route.resource, namespace: route.namespace), createRequest, identity: Self.requester)
            }
            throw APIError.notFound(route.resource, name)
        }
        let patched: JSONValue
        switch format {
        case .merge: patched = Patch.merge(current, patchBody)
        case .strategicMerge, .apply: patched = try Patch.strategicMerge(current, patchBody)
        case .json: patched = try Patch.jsonPatch(current, patchBody)
        }
        return try replace(route, request, with: patched, expectedRevision: patchBody.string(at: ["metadata", "resourceVersion"]),
                           expectedUID: patchBody.string(at: ["metadata", "uid"]), created: false)
    }

    /// Validates and stores a new version of an object (update and patch), keeping what the
    /// route may not change: status on the main resource, everything but status on `/status`.
    private func replace(_ route: RequestRoute, _ request: HTTPRequest, with tree: JSONValue, expectedRevision: String?, expectedUID: String?, created: Bool) throws -> HTTPResponse {
        if route.resource == .services {
            return try allocationLock.withLock { _ in
                try replaceObject(route, request, with: tree, expectedRevision: expectedRevision, expectedUID: expectedUID, created: created)
            }
        }
        return try replaceObject(route, request, with: tree, expectedRevision: expectedRevision, expectedUID: expectedUID, created: created)
    }

    /// `expectedUID` (the body's or the patch's `metadata.uid`) is kube-apiserver's UID
    /// precondition, checked against the stored object inside the write: a board's final status
    /// never lands on a pod of the same name created since.
    private func replaceObject(_ route: RequestRoute, _ request: HTTPRequest, with tree: JSONValue, expectedRevision: String?, expectedUID: String?, created: Bool) throws -> HTTPResponse {
        let name = route.name ?? ""
        let namespace = try Self.namespace(of: route)
        let (mode, warn) = try Self.fieldValidation(request)
        let codec = ResourceCodec(resource: route.resource)
        var warnings: [String] = []
        // Read before the update (the store is not re-entered from inside it); the allocation lock
        // keeps them current.
        let otherServices = route.resource == .services ? try store.list(.services, namespace: nil).items : []
        func transform(_ current: JSONValue) throws -> JSONValue {
            if let expectedUID, !expectedUID.isEmpty, let uid = current.string(at: ["metadata", "uid"]), expectedUID != uid {
                throw APIError.conflict(route.resource, name, "Precondition failed: UID in precondition: \(expectedUID), UID in object meta: \(uid)")
            }
            var next: JSONValue
            let hasStatusSubresource = route.resource.subresources.contains("status")
            switch route.subresource {
            case "status":
                next = current
                next.set(["status"], tree["status"])
            case "approval":
                next = current
                next.set(["status", "conditions"], tree[path: ["status", "conditions"]])
            default:
                next = tree
                next.set(["metadata", "namespace"], current[path: ["metadata", "namespace"]])
                if hasStatusSubresource { next.set(["status"], current["status"]) }
                if current[path: ["metadata", "deletionTimestamp"]] != nil {
                    next.set(["metadata", "deletionTimestamp"], current[path: ["metadata", "deletionTimestamp"]])
                    next.set(["metadata", "deletionGracePeriodSeconds"], current[path: ["metadata", "deletionGracePeriodSeconds"]])
                }
            }
            next.set(["metadata", "generation"], current[path: ["metadata", "generation"]])
            var decoded = try codec.decode(next, validation: mode)
            warnings = decoded.droppedFields
            if route.resource == .services { decoded.object = ResourceDefaults.dropTypeDependentFields(old: current, new: decoded.object) }
            decoded.object = ResourceDefaults.apply(decoded.object, resource: route.resource)
            try ObjectValidation.validate(decoded.object, resource: route.resource)
            if route.subresource == nil { try ObjectValidation.validateUpdate(old: current, new: decoded.object, resource: route.resource) }
            if route.resource == .services {
                decoded.object = try allocateService(decoded.object, old: current, namespace: namespace, name: name, services: otherServices)
            }
            try admitNodeWrite(route, old: current, new: decoded.object)
            if route.resource == .pods, route.subresource == nil, let old = try? KubeJSON.decode(Pod.self, from: current),
               let new = try? KubeJSON.decode(Pod.self, from: decoded.object) {
                let causes = PodValidation.updateProblems(old: old, new: new)
                if !causes.isEmpty { throw APIError.invalid(route.resource, name, causes) }
            }
            var result = decoded.object
            if Self.specChanged(current, result) {
                result.set(["metadata", "generation"], .integer((current.int64(at: ["metadata", "generation"]) ?? 1) + 1))
            }
            return result
        }
        if request.query["dryRun"] == "All" {
            // Checked and answered as if stored, but not stored (kubectl diff, apply --dry-run=server).
            guard let current = try store.get(route.resource, namespace: namespace, name: name) else { throw APIError.notFound(route.resource, name) }
            if let expectedRevision, !expectedRevision.isEmpty, expectedRevision != current.string(at: ["metadata", "resourceVersion"]) {
                throw APIError.conflict(route.resource, name, "the object has been modified; please apply your changes to the latest version and try again")
            }
            return Self.objectResponse(200, try transform(current))
        }
        let stored = try store.update(route.resource, namespace: namespace, name: name, expectedRevision: expectedRevision) { try transform($0) }
        // An object being deleted goes once its last finalizer is gone.
        if Self.mayRemove(stored, resource: route.resource) {
            let removed = try store.delete(route.resource, namespace: namespace, name: name)
            if route.resource == .nodes { NodePasswords(store: store).forget(node: name) }
            return Self.objectResponse(200, removed)
        }
        if route.resource == .certificateSigningRequests, let signer {
            return Self.objectResponse(200, try signer.process(name: name))
        }
        return Self.objectResponse(200, stored, warnings: warn ? warnings.map { "unknown field \"\($0)\"" } : [])
    }

    func delete(_ route: RequestRoute, _ request: HTTPRequest) throws -> HTTPResponse {
        let name = route.name ?? ""
        let namespace = try Self.namespace(of: route)
        let options = request.body.isEmpty ? JSONValue.object(JSONObject()) : try Self.body(request)
        guard let current = try store.get(route.resource, namespace: namespace, name: name) else { throw APIError.notFound(route.resource, name) }
        if let expectedVersion = options.string(at: ["preconditions", "resourceVersion"]),
           expectedVersion != current.string(at: ["metadata", "resourceVersion"]) {
            throw APIError.conflict(route.resource, name, "Precondition failed: ResourceVersion in precondition: \(expectedVersion), ResourceVersion in object meta: \(current.string(at: ["metadata", "resourceVersion"]) ?? "")")
        }
        let expectedUID = options.string(at: ["preconditions", "uid"])
        let requestedGrace: Int64?
        do {
            requestedGrace = try DeleteOptionsValidation.gracePeriodSeconds(query: request.query["gracePeriodSeconds"], body: options)
        } catch {
            throw APIError(code: 422, reason: "Invalid", message: "DeleteOptions \"\" is invalid: [\(error.cause.field ?? ""): \(error.cause.message ?? "")]",
                           details: StatusDetails(group: "meta.k8s.io", kind: "DeleteOptions", causes: [error.cause]))
        }
        // A dry run changes nothing: the object as it is answers.
        if request.query["dryRun"] == "All" || options["dryRun"]?.arrayValue?.contains("All") == true { return Self.objectResponse(200, current) }
        let hasFinalizers = Self.hasFinalizers(current)
        var requestedFinalizer = try Self.propagationFinalizer(request, options)
        // batch/v1 Jobs orphan their pods unless told otherwise, as in Kubernetes (kubectl asks for Background).
        if route.resource == .jobs, request.query["propagationPolicy"] == nil, options[path: ["propagationPolicy"]] == nil,
           request.query["orphanDependents"] == nil, options[path: ["orphanDependents"]] == nil {
            requestedFinalizer = GarbageCollector.orphanFinalizer
        }
        // Only objects the garbage collector looks at can wait for it.
        let propagationFinalizer = GarbageCollector.resources.contains(route.resource) ? requestedFinalizer : nil

        // Pods bound to a node terminate gracefully: the node's agent stops them and then deletes.
        var grace: Int64 = 0
        if route.resource == .pods, current.string(at: ["spec", "nodeName"]) != nil {
            grace = DeleteOptionsValidation.podGracePeriod(requested: requestedGrace, podDefault: current.int64(at: ["spec", "terminationGracePeriodSeconds"]))
        }
        if route.resource == .namespaces {
            if Self.systemNamespaces.contains(name) { throw APIError.forbidden("namespace \"\(name)\" is a system namespace and cannot be deleted") }
            try deleteNamespaceContents(name)
        }
        if grace > 0 || hasFinalizers || propagationFinalizer != nil {
            let deadline = Timestamp.now().adding(seconds: grace)
            let marked = try store.update(route.resource, namespace: namespace, name: name) { object in
                var next = object
                if let propagationFinalizer {
                    // The garbage collector orphans or deletes the dependents, then drops it.
                    var finalizers = (object[path: ["metadata", "finalizers"]]?.arrayValue ?? []).filter {
                        $0.stringValue != GarbageCollector.orphanFinalizer && $0.stringValue != GarbageCollector.foregroundFinalizer
                    }
                    finalizers.append(.string(propagationFinalizer))
                    next.set(["metadata", "finalizers"], .array(finalizers))
                }
                if let existing = object.string(at: ["metadata", "deletionTimestamp"]), let existingTime = try? Timestamp(rfc3339: existing), existingTime <= deadline {
                    // Already terminating at least as soon; a shorter grace period is still
                    // recorded (a node's confirmation is a delete with grace period 0).
                    if grace < (object.int64(at: ["metadata", "deletionGracePeriodSeconds"]) ?? Int64.max) {
                        next.set(["metadata", "deletionGracePeriodSeconds"], .integer(grace))
                    }
                    return next == object ? nil : next
                }
                next.set(["metadata", "deletionTimestamp"], .string(deadline.description))
                next.set(["metadata", "deletionGracePeriodSeconds"], .integer(grace))
                return next
            }
            return Self.objectResponse(200, marked)
        }
        let removed = try store.delete(route.resource, namespace: namespace, name: name, expectedUID: expectedUID)
        // A deleted node's name is free again: its password goes with it (as with k3s).
        if route.resource == .nodes { NodePasswords(store: store).forget(node: name) }
        return Self.objectResponse(200, removed)
    }

    /// The finalizer a delete's propagation policy asks for: `orphan` (`Orphan`, or the older
    /// `orphanDependents: true`), `foregroundDeletion` (`Foreground`), or none (`Background`,
    /// the default: the garbage collector deletes the dependents after the owner is gone).
    static func propagationFinalizer(_ request: HTTPRequest, _ options: JSONValue) throws -> String? {
        let policy = request.query["propagationPolicy"] ?? options.string(at: ["propagationPolicy"])
        let orphanDependents = request.query["orphanDependents"].map { $0 == "true" } ?? options[path: ["orphanDependents"]]?.boolValue
        if policy != nil, orphanDependents != nil {
            throw APIError(code: 422, reason: "Invalid", message: "DeleteOptions \"\" is invalid: [propagationPolicy: Invalid value: \"\(policy ?? "")\": orphanDependents and deletionPropagation cannot be both set]",
                           details: StatusDetails(group: "meta.k8s.io", kind: "DeleteOptions", causes: [StatusCause(reason: "FieldValueInvalid",
                               message: "orphanDependents and deletionPropagation cannot be both set", field: "propagationPolicy")]))
        }
        switch policy {
        case "Orphan"?: return GarbageCollector.orphanFinalizer
        case "Foreground"?: return GarbageCollector.foregroundFinalizer
        case "Background"?: return nil
        case nil: return orphanDependents == true ? GarbageCollector.orphanFinalizer : nil
        case let other?:
            let message = "Unsupported value: \"\(other.prefix(64))\": supported values: \"Foreground\", \"Background\", \"Orphan\", \"nil\""
            throw APIError(code: 422, reason: "Invalid", message: "DeleteOptions \"\" is invalid: [propagationPolicy: \(message)]",
                           details: StatusDetails(group: "meta.k8s.io", kind: "DeleteOptions", causes: [StatusCause(reason: "FieldValueNotSupported", message: message, field: "propagationPolicy")]))
        }
    }

    /// New objects go only into a namespace that exists and is not being deleted.
    static func checkNamespaceAcceptsContent(_ namespace: String, store: ObjectStore) throws {
        guard let object = try store.get(.namespaces, namespace: "", name: namespace) else { throw APIError.notFound(.namespaces, namespace) }
        if object[path: ["metadata", "deletionTimestamp"]] != nil {
            throw APIError.forbidden("unable to create new content in namespace \(namespace) because it is being terminated")
        }
    }

    /// Removes every namespaced object of a namespace being deleted: the workloads first, so
    /// their controllers do not make new pods meanwhile.
    private func deleteNamespaceContents(_ namespace: String) throws {
        let workloads: [ResourceType] = [.cronJobs, .jobs, .deployments, .daemonSets, .replicaSets]
        for resource in workloads + ResourceType.all.filter({ $0.namespaced && !workloads.contains($0) }) where resource.namespaced {
            for object in try store.list(resource, namespace: namespace).items {
                if let name = object.string(at: ["metadata", "name"]) {
                    _ = try? store.delete(resource, namespace: namespace, name: name)
                }
            }
        }
    }

    private func checkTypeMeta(_ tree: JSONValue, _ resource: ResourceType) throws {
        guard case .object = tree else { throw APIError.badRequest("the request body must be a JSON object") }
        if let kind = tree.string(at: ["kind"]), kind != resource.kind {
            throw APIError.badRequest("the kind of the object (\(kind)) does not match the resource (\(resource.kind))")
        }
        if let apiVersion = tree.string(at: ["apiVersion"]), apiVersion != resource.apiVersion {
            throw APIError.badRequest("the apiVersion of the object (\(apiVersion)) does not match the resource (\(resource.apiVersion))")
        }
    }

    /// Fields a client may not set on create (the store fills them).
    static func stripServerFields(_ object: JSONValue) -> JSONValue {
        var result = object
        for key in ["uid", "resourceVersion", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation", "selfLink"] {
            result.set(["metadata", key], nil)
        }
        return result
    }

    static func specChanged(_ old: JSONValue, _ new: JSONValue) -> Bool {
        var oldBody = old
        var newBody = new
        for key in ["metadata", "status", "apiVersion", "kind"] {
            oldBody.set([key], nil)
            newBody.set([key], nil)
        }
        return oldBody != newBody
    }

    /// Whether an object being deleted may go now: no finalizer is left, and a pod bound to a
    /// node was confirmed stopped by its node (a delete with grace period 0).
    static func mayRemove(_ object: JSONValue, resource: ResourceType) -> Bool {
        guard object[path: ["metadata", "deletionTimestamp"]] != nil, !hasFinalizers(object) else { return false }
        return resource != .pods || object.string(at: ["spec", "nodeName"]) == nil || object.int64(at: ["metadata", "deletionGracePeriodSeconds"]) == 0
    }

    static func hasFinalizers(_ object: JSONValue) -> Bool {
        if case .array(let items)? = object[path: ["metadata", "finalizers"]] { return !items.isEmpty }
        return false
    }

    static func randomSuffix() -> String {
        let alphabet = Array("bcdfghjklmnpqrstvwxz2456789")
        return String((0..<5).map { _ in alphabet.randomElement()! })
    }
}
