import Foundation
import IotkubeTestSupport
import KubeModel
import Testing

@testable import ControlPlane

/// Requests without credentials, over real HTTPS: as with Kubernetes' default RBAC
/// (`system:public-info-viewer` and the `cluster-info` role), they reach `/version`, the health
/// endpoints and `cluster-info` only; discovery, OpenAPI and every resource are 403 Forbidden
/// for `system:anonymous`. Bad credentials stay 401.
@Suite(.ownThread, .serialized)
struct AnonymousAccessTests {
    @Test(.enabled(if: toolAvailable("curl"), "curl is not installed"))
    func anonymousCallersGetPublicInfoOnly() throws {
        let server = try ServerProcess()
        // A join token publishes the signed cluster-info, as `iotkube-server token create` does.
        let token = try ServerProcess.run(ServerProcess.serverBinary.path, ["token", "create", "--data-dir", server.directory.path])
        #expect(token.status == 0, "\(token.output)")
        let nobody = ClusterCaller.anonymous(server)
        for path in ["/version", "/healthz", "/readyz", "/livez"] {
            #expect(try nobody.get(path).status == 200, "\(path)")
        }
        let clusterInfo = try nobody.get("/api/v1/namespaces/kube-public/configmaps/cluster-info")
        #expect(clusterInfo.status == 200 && clusterInfo.json?.string(at: ["data", "kubeconfig"]) != nil, "\(clusterInfo.body)")
        #expect(clusterInfo.body.contains("jws-kubeconfig-"), "\(clusterInfo.body)")

        for path in ["/api", "/api/", "/apis", "/api/v1", "/apis/coordination.k8s.io", "/apis/coordination.k8s.io/v1",
                     "/openapi/v3", "/openapi/v3/api/v1", "/openapi/v2", "/metrics", "/nowhere"] {
            let answer = try nobody.get(path)
            #expect(answer.status == 403, "\(path): \(answer.body)")
            #expect(answer.json?.string(at: ["reason"]) == "Forbidden" && answer.message.contains(#"User "system:anonymous" cannot get path"#), "\(path): \(answer.body)")
            #expect(!answer.body.contains("resources") && !answer.body.contains("openapi\":"), "\(path): \(answer.body)")
        }
        let resources = [("GET", "/api/v1/namespaces/kube-public/configmaps"), ("GET", "/api/v1/namespaces/kube-public/configmaps?watch=true"),
                         ("GET", "/api/v1/namespaces/kube-system/secrets"), ("GET", "/api/v1/nodes"), ("GET", "/api/v1/widgets"),
                         ("DELETE", "/api/v1/namespaces/kube-public/configmaps/cluster-info")]
        for (method, path) in resources {
            let answer = try nobody.call(method, path)
            #expect(answer.status == 403 && answer.message.contains(#"User "system:anonymous" cannot"#), "\(method) \(path): \(answer.body)")
        }
        let write = try nobody.call("PUT", "/api/v1/namespaces/kube-public/configmaps/cluster-info", body: #"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cluster-info"}}"#)
        #expect(write.status == 403, "\(write.body)")
        #expect(try nobody.get("/api/v1/namespaces/kube-public/configmaps/cluster-info").json?.string(at: ["data", "kubeconfig"]) != nil)

        // A wrong token is not anonymous: 401. Any real identity still reads discovery.
        #expect(try nobody.call("GET", "/api", headers: ["Authorization: Bearer abcdef.0123456789abcdef"]).status == 401)
        let node = try ClusterCaller.node(server, "pi1")
        #expect(try node.get("/api").status == 200)
        #expect(try node.get("/openapi/v3").status == 200)
    }
}
