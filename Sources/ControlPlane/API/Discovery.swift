import KubeModel
import SystemSupport

/// Discovery documents (`/api`, `/apis`, resource lists), `/version` and the OpenAPI v3 documents
/// kubectl reads before it creates, applies or patches.
enum Discovery {
    static let kubernetesVersion = (major: "1", minor: "30", git: "v1.30.0")

    static func version() -> JSONValue {
        [
            "major": .string(kubernetesVersion.major), "minor": .string(kubernetesVersion.minor),
            "gitVersion": .string("\(kubernetesVersion.git)+iotkube-\(IotkubeVersion.current)"), "gitCommit": "", "gitTreeState": "clean",
            "buildDate": "1970-01-01T00:00:00Z", "goVersion": "", "compiler": "swift", "platform": .string(platform),
        ]
    }

    static var platform: String {
        #if arch(x86_64)
            return "linux/amd64"
        #elseif arch(arm64)
            return "linux/arm64"
        #elseif arch(arm)
            return "linux/arm"
        #else
            return "linux/unknown"
        #endif
    }

    static var groupVersions: [(group: String, version: String)] {
        var seen: [(String, String)] = []
        for resource in ResourceType.all where !resource.group.isEmpty && !seen.contains(where: { $0 == (resource.group, resource.version) }) {
            seen.append((resource.group, resource.version))
        }
        return seen
    }

    static func coreVersions() -> JSONValue {
        ["kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [["clientCIDR": "0.0.0.0/0", "serverAddress": ""]]]
    }

    static func groupList() -> JSONValue {
        let groups: [JSONValue] = groupVersions.map { entry in
            let version: JSONValue = ["groupVersion": .string("\(entry.group)/\(entry.version)"), "version": .string(entry.version)]
            return ["name": .string(entry.group), "versions": [version], "preferredVersion": version]
        }
        return ["kind": "APIGroupList", "apiVersion": "v1", "groups": .array(groups)]
    }

    static func group(_ name: String) -> JSONValue? {
        guard let entry = groupVersions.first(where: { $0.group == name }) else { return nil }
        let version: JSONValue = ["groupVersion": .string("\(entry.group)/\(entry.version)"), "version": .string(entry.version)]
        return ["kind": "APIGroup", "apiVersion": "v1", "name": .string(name), "versions": [version], "preferredVersion": version]
    }

    static func resourceList(group: String, version: String) -> JSONValue? {
        let resources = ResourceType.all.filter { $0.group == group && $0.version == version }
        guard !resources.isEmpty else { return nil }
        var entries: [JSONValue] = []
        for resource in resources {
            var entry: JSONValue = [
                "name": .string(resource.plural), "singularName": .string(resource.singular), "namespaced": .bool(resource.namespaced),
                "kind": .string(resource.kind), "verbs": .array(resource.verbs.map(JSONValue.string)),
            ]
            if !resource.shortNames.isEmpty { entry.set(["shortNames"], .array(resource.shortNames.map(JSONValue.string))) }
            if !resource.categories.isEmpty { entry.set(["categories"], .array(resource.categories.map(JSONValue.string))) }
            entries.append(entry)
            for subresource in resource.subresources {
                let connect = ["exec": "PodExecOptions", "attach": "PodAttachOptions", "portforward": "PodPortForwardOptions", "proxy": "NodeProxyOptions"]
                let verbs: [JSONValue] = subresource == "log" || subresource == "proxy" ? ["get"] : connect[subresource] != nil ? ["create", "get"] : ["get", "patch", "update"]
                var subresourceEntry: JSONValue = [
                    "name": .string("\(resource.plural)/\(subresource)"), "singularName": "", "namespaced": .bool(resource.namespaced),
                    "kind": .string(subresource == "log" ? "Pod" : connect[subresource] ?? resource.kind), "verbs": .array(verbs),
                ]
                if subresource == "scale" {
                    // kubectl scale finds the Scale kind it sends here.
                    subresourceEntry.set(["group"], "autoscaling")
                    subresourceEntry.set(["version"], "v1")
                    subresourceEntry.set(["kind"], "Scale")
                }
                entries.append(subresourceEntry)
            }
        }
        let groupVersion = group.isEmpty ? version : "\(group)/\(version)"
        return ["kind": "APIResourceList", "apiVersion": "v1", "groupVersion": .string(groupVersion), "resources": .array(entries)]
    }

    /// `/openapi/v3`: where each group-version's document is.
    static func openAPIRoot() -> JSONValue {
        var paths = JSONObject()
        paths["api/v1"] = ["serverRelativeURL": .string("/openapi/v3/api/v1?hash=\(documentHash)")]
        for entry in groupVersions where entry.group != ResourceType.nodeMetrics.group {
            paths["apis/\(entry.group)/\(entry.version)"] = ["serverRelativeURL": .string("/openapi/v3/apis/\(entry.group)/\(entry.version)?hash=\(documentHash)")]
        }
        return ["paths": .object(paths)]
    }

    static let documentHash = "iotkube-\(IotkubeVersion.current)"

    /// A group-version's OpenAPI v3 document: each resource's paths with a `patch` operation that
    /// declares the `fieldValidation` parameter, so kubectl validates on the server (Strict).
    static func openAPIDocument(group: String, version: String) -> JSONValue? {
        let resources = ResourceType.all.filter { $0.group == group && $0.version == version && !$0.isMetrics }
        guard !resources.isEmpty else { return nil }
        var paths = JSONObject()
        var schemas = JSONObject()
        for resource in resources {
            let gvk: JSONValue = ["group": .string(resource.group), "version": .string(resource.version), "kind": .string(resource.kind)]
            let schemaName = "io.k8s.api.\(resource.group.isEmpty ? "core" : resource.group.split(separator: ".").first.map(String.init) ?? resource.group).\(resource.version).\(resource.kind)"
            schemas[schemaName] = ["type": "object", "x-kubernetes-group-version-kind": [gvk]]
            let reference: JSONValue = ["$ref": .string("#/components/schemas/\(schemaName)")]
            let operation: JSONValue = [
                "operationId": .string("patch\(resource.kind)"), "x-kubernetes-action": "patch", "x-kubernetes-group-version-kind": gvk,
                "parameters": [["name": "fieldValidation", "in": "query", "schema": ["type": "string", "uniqueItems": true]],
                               ["name": "fieldManager", "in": "query", "schema": ["type": "string", "uniqueItems": true]]],
                "responses": ["200": ["description": "OK", "content": ["application/json": ["schema": reference]]]],
            ]
            let prefix = group.isEmpty ? "/api/\(version)" : "/apis/\(group)/\(version)"
            let itemPath = resource.namespaced ? "\(prefix)/namespaces/{namespace}/\(resource.plural)/{name}" : "\(prefix)/\(resource.plural)/{name}"
            paths[itemPath] = ["patch": operation]
        }
        return [
            "openapi": "3.0.0", "info": ["title": "Kubernetes", "version": .string(kubernetesVersion.git)],
            "paths": .object(paths), "components": ["schemas": .object(schemas)],
        ]
    }
}
