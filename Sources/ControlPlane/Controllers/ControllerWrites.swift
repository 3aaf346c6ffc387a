import KubeModel

/// What the server's controllers write, through the same defaults and validation as a
/// client's request (a controller never stores what the API would refuse).
struct ControllerWrites {
    let store: ObjectStore
    /// The component named in events (`replicaset-controller`).
    let component: String

    /// Stores a new object of `resource`; a `generateName` gets a random suffix.
    @discardableResult
    func create(_ resource: ResourceType, namespace: String, object: JSONValue) throws -> JSONValue {
        var tree = object
        if resource.namespaced {
            tree.set(["metadata", "namespace"], .string(namespace))
            try APIServer.checkNamespaceAcceptsContent(namespace, store: store)
        }
        if tree.string(at: ["metadata", "name"]) ?? "" == "", let prefix = tree.string(at: ["metadata", "generateName"]) {
            tree.set(["metadata", "name"], .string(prefix + APIServer.randomSuffix()))
        }
        var decoded = try ResourceCodec(resource: resource).decode(tree, validation: .discard)
        var preassignedUID: String?
        if resource == .jobs { (decoded.object, preassignedUID) = try ResourceDefaults.identifyJob(decoded.object) }
        decoded.object = ResourceDefaults.apply(decoded.object, resource: resource)
        try ObjectValidation.validate(decoded.object, resource: resource)
        let name = decoded.object.string(at: ["metadata", "name"]) ?? ""
        var stripped = APIServer.stripServerFields(decoded.object)
        if let preassignedUID { stripped.set(["metadata", "uid"], .string(preassignedUID)) }
        return try store.create(resource, namespace: namespace, name: name, object: stripped)
    }

    /// Deletes a pod as a client's delete would: a pod bound to a node is marked with its grace
    /// period (the node's agent stops it and removes it), an unbound one goes at once. Only the
    /// pod with `uid` is touched (a pod of the same name created since stays).
    func deletePod(namespace: String, name: String, uid: String?) throws {
        guard let current = try store.get(.pods, namespace: namespace, name: name) else { return }
        if let uid, current.string(at: ["metadata", "uid"]) != uid { return }
        if current.string(at: ["spec", "nodeName"]) == nil, !APIServer.hasFinalizers(current) {
            try store.delete(.pods, namespace: namespace, name: name, expectedUID: uid)
            return
        }
        let grace = DeleteOptionsValidation.podGracePeriod(requested: nil, podDefault: current.int64(at: ["spec", "terminationGracePeriodSeconds"]))
        let deadline = Timestamp.now().adding(seconds: current.string(at: ["spec", "nodeName"]) == nil ? 0 : grace)
        try store.update(.pods, namespace: namespace, name: name) { object in
            guard object[path: ["metadata", "deletionTimestamp"]] == nil, uid == nil || object.string(at: ["metadata", "uid"]) == uid else { return nil }
            var next = object
            next.set(["metadata", "deletionTimestamp"], .string(deadline.description))
            next.set(["metadata", "deletionGracePeriodSeconds"], .integer(grace))
            return next
        }
    }

    /// Deletes an object that is not a pod as a client's delete would: one held by finalizers
    /// is marked and goes when they are done. Only the object with `uid` is touched.
    func delete(_ resource: ResourceType, namespace: String, name: String, uid: String?) throws {
        guard let current = try store.get(resource, namespace: namespace, name: name), uid == nil || current.string(at: ["metadata", "uid"]) == uid else { return }
        guard APIServer.hasFinalizers(current) else {
            try store.delete(resource, namespace: namespace, name: name, expectedUID: uid)
            return
        }
        try store.update(resource, namespace: namespace, name: name) { object in
            guard object[path: ["metadata", "deletionTimestamp"]] == nil, uid == nil || object.string(at: ["metadata", "uid"]) == uid else { return nil }
            var next = object
            next.set(["metadata", "deletionTimestamp"], .string(Timestamp.now().description))
            next.set(["metadata", "deletionGracePeriodSeconds"], .integer(0))
            return next
        }
    }

    /// Records an event about `object`.
    func event(about object: ObjectReference, type: String, reason: String, message: String) {
        guard let namespace = object.namespace, let name = object.name else { return }
        let eventName = "\(name).\(String(UInt64.random(in: 0...UInt64.max), radix: 16))"
        var event = Event(metadata: ObjectMeta(name: eventName, namespace: namespace), involvedObject: object, reason: reason, message: message, type: type)
        event.source = EventSource(component: component)
        event.firstTimestamp = .now()
        event.lastTimestamp = event.firstTimestamp
        event.count = 1
        event.reportingComponent = component
        event.setTypeMeta()
        _ = try? store.create(.events, namespace: namespace, name: eventName, object: try KubeJSON.tree(event))
    }

    /// The reference an event or an owner reference uses for `object`.
    static func reference<T: KubeObject>(_ object: T) -> ObjectReference {
        ObjectReference(kind: T.kind, namespace: object.metadata.namespace, name: object.metadata.name, uid: object.metadata.uid, apiVersion: T.apiVersion)
    }

    /// The owner reference a controller puts on what it creates.
    static func controllerReference<T: KubeObject>(to owner: T) -> OwnerReference {
        var reference = OwnerReference(apiVersion: T.apiVersion, kind: T.kind, name: owner.metadata.name ?? "", uid: owner.metadata.uid ?? "", controller: true)
        reference.blockOwnerDeletion = true
        return reference
    }
}

extension JSONValue {
    /// Whether a stored object's controller (owner reference with `controller: true`) is of
    /// `kind`, or it has none: the pods a controller of that kind may own or adopt. Read from
    /// the tree, so a pass decodes only those.
    func controlledBy(kindOrNone kind: String) -> Bool {
        guard let controller = (self[path: ["metadata", "ownerReferences"]]?.arrayValue ?? []).first(where: { $0["controller"] == .bool(true) }) else {
            return true
        }
        return controller.string(at: ["kind"]) == kind
    }
}

extension ObjectMeta {
    /// The owner reference marked as the controller, if any.
    var controllerReference: OwnerReference? { ownerReferences?.first { $0.controller == true } }
}
