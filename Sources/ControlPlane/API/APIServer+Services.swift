import KubeModel

extension APIServer {
    /// Gives a service about to be stored its cluster address and node ports (callers hold
    /// `allocationLock`). `services`: the stored ones, when already read.
    func allocateService(_ object: JSONValue, old: JSONValue?, namespace: String, name: String, services: [JSONValue]? = nil) throws -> JSONValue {
        guard var service = try? KubeJSON.decode(KubeService.self, from: object) else { return object }
        let stored = try services ?? store.list(.services, namespace: nil).items
        let allocator = ServiceAllocator(addressing: serviceAddressing, services: stored, excluding: namespace, name)
        try allocator.allocate(&service, old: old.flatMap { try? KubeJSON.decode(KubeService.self, from: $0) })
        return try KubeJSON.tree(service)
    }

    /// The `kubernetes` service in `default` and its endpoint slice: the API at the service
    /// range's first address, port 443 (named `https`), reaching `address:port`. Kept as
    /// kube-apiserver's endpoint reconciler keeps them: rewritten when they differ.
    public func reconcileAPIService(address: String, port: Int) throws {
        try allocationLock.withLock { _ in
            let clusterAddress = serviceAddressing.apiServiceAddress
            var service = KubeService(metadata: ObjectMeta(name: "kubernetes", namespace: "default"),
                                  spec: ServiceSpec(ports: [ServicePort(name: "https", port: 443, targetPort: .int(Int32(clamping: port)), protocol: "TCP")]))
            service.metadata.labels = ["component": "apiserver", "provider": "kubernetes"]
            service.spec?.clusterIP = clusterAddress
            service = ResourceDefaults.defaultService(service)
            let current = try store.get(.services, namespace: "default", name: "kubernetes")
            let stored = try store.list(.services, namespace: nil).items
            try ServiceAllocator(addressing: serviceAddressing, services: stored, excluding: "default", "kubernetes").allocate(&service, old: nil)
            let serviceTree = try KubeJSON.tree(service)
            if let current {
                if current["spec"] != serviceTree["spec"] {
                    _ = try store.update(.services, namespace: "default", name: "kubernetes") { object in
                        var next = object
                        next.set(["spec"], serviceTree["spec"])
                        return next
                    }
                }
            } else {
                _ = try store.create(.services, namespace: "default", name: "kubernetes", object: serviceTree)
            }
            // An advertised host name (not an address) is an FQDN endpoint.
            let addressType = IPv4Network.parseAddress(address) == nil ? "FQDN" : "IPv4"
            var slice = EndpointSlice(metadata: ObjectMeta(name: "kubernetes", namespace: "default"), addressType: addressType,
                                      endpoints: [Endpoint(addresses: [address], conditions: EndpointConditions(ready: true))],
                                      ports: [EndpointPort(name: "https", port: Int32(clamping: port), protocol: "TCP")])
            slice.metadata.labels = [EndpointSlice.serviceNameLabel: "kubernetes"]
            let sliceTree = try KubeJSON.tree(slice)
            if let existing = try store.get(.endpointSlices, namespace: "default", name: "kubernetes") {
                if existing["endpoints"] != sliceTree["endpoints"] || existing["ports"] != sliceTree["ports"] || existing["addressType"] != sliceTree["addressType"] {
                    _ = try store.update(.endpointSlices, namespace: "default", name: "kubernetes") { object in
                        var next = object
                        next.set(["endpoints"], sliceTree["endpoints"])
                        next.set(["ports"], sliceTree["ports"])
                        next.set(["addressType"], sliceTree["addressType"])
                        return next
                    }
                }
            } else {
                _ = try store.create(.endpointSlices, namespace: "default", name: "kubernetes", object: sliceTree)
            }
        }
    }
}
