import Foundation
import IotkubeTestSupport
import Testing

/// Basic (htpasswd) and bearer-token registries, credentials from a Docker config file, and a
/// mirror configured in agent.yaml standing in for a registry that is down.
@Suite(.ownThread, .enabled(if: RegistryFixture.toolsPresent, "needs docker-registry, skopeo, umoci, htpasswd, openssl, zstd, busybox-static, python3"))
struct RegistryAuthTests {
    func authFile(_ fixture: RegistryFixture, registry: String, password: String) throws -> String {
        let path = fixture.directory + "/auth-\(UUID().uuidString).json"
        let auth = Data("\(fixture.user):\(password)".utf8).base64EncodedString()
        try #"{"auths": {"\#(registry)": {"auth": "\#(auth)"}}}"#.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func basicAuthRegistry() throws {
        let fixture = try RegistryFixture.get()
        let anonymous = try fixture.pull("busybox", root: fixture.newStateDirectory(), registry: fixture.basicAuth)
        #expect(anonymous.status != 0)
        #expect(anonymous.output.contains("requires a user name and password; none configured for \(fixture.basicAuth)"), "\(anonymous.output)")
        let wrong = try fixture.pull("busybox", root: fixture.newStateDirectory(), registry: fixture.basicAuth,
                                     extra: ["--auth-file", authFile(fixture, registry: fixture.basicAuth, password: "wrong")])
        #expect(wrong.status != 0)
        #expect(wrong.output.contains("access denied by \(fixture.basicAuth) (401) with the configured credentials"), "\(wrong.output)")
        let root = fixture.newStateDirectory()
        let good = try fixture.pull("busybox", root: root, registry: fixture.basicAuth,
                                    extra: ["--auth-file", authFile(fixture, registry: fixture.basicAuth, password: fixture.password)])
        #expect(good.status == 0, "\(good.output)")
        #expect(try fixture.records(root: root).count == 1)
    }

    @Test func bearerTokenRegistry() throws {
        let fixture = try RegistryFixture.get()
        let anonymous = try fixture.pull("busybox", root: fixture.newStateDirectory(), registry: fixture.tokenAuth)
        #expect(anonymous.status != 0)
        #expect(anonymous.output.contains("the token service http://127.0.0.1:"), "\(anonymous.output)")
        #expect(anonymous.output.contains("answered 401 (no credentials configured)"))
        let root = fixture.newStateDirectory()
        let good = try fixture.pull("many", root: root, registry: fixture.tokenAuth,
                                    extra: ["--auth-file", authFile(fixture, registry: fixture.tokenAuth, password: fixture.password)])
        #expect(good.status == 0, "\(good.output)")
        #expect((try fixture.records(root: root).first?["layers"] as? [String])?.count == 41)
    }

    @Test func httpsRegistryWithAPrivateCA() throws {
        let fixture = try RegistryFixture.get()
        let reference = "\(fixture.tls)/test/plain:1"
        // The handshake fails while the request is being written: each try must still name the
        // certificate, not the closed connection (a race that once lost the reason).
        for _ in 1...5 {
            let untrusted = try fixture.agent(["pull", "--root", fixture.newStateDirectory(), "--config", fixture.directory + "/no-agent.yaml", reference])
            #expect(untrusted.status != 0)
            #expect(untrusted.output.contains("CERTIFICATE_VERIFY_FAILED") && untrusted.output.contains("give its CA in registryCAFiles"), "\(untrusted.output)")
        }
        let config = fixture.directory + "/ca-agent-\(UUID().uuidString).yaml"
        try """
            nodeName: "board-1"
            server: "https://127.0.0.1:6443"
            kubeconfig: "/etc/iotkube/kubeconfig"
            registryCAFiles:
              "\(fixture.tls)": "\(fixture.caFile)"
            registryAuthFile: "\(fixture.directory)/none.json"
            """.write(toFile: config, atomically: true, encoding: .utf8)
        let trusted = try fixture.agent(["pull", "--root", fixture.newStateDirectory(), "--config", config, reference])
        #expect(trusted.status == 0, "\(trusted.output)")
        // An insecure registry that speaks TLS is used over TLS without verification.
        let insecure = try fixture.agent(["pull", "--root", fixture.newStateDirectory(), "--config", fixture.directory + "/no-agent.yaml",
                                          "--insecure-registry", fixture.tls, reference])
        #expect(insecure.status == 0, "\(insecure.output)")
    }

    @Test func mirrorFromTheAgentConfigurationIsTriedFirst() throws {
        let fixture = try RegistryFixture.get()
        let downPort = try ServerProcess.freePort()
        let config = fixture.directory + "/mirror-agent-\(UUID().uuidString).yaml"
        try """
            nodeName: "board-1"
            server: "https://127.0.0.1:6443"
            kubeconfig: "/etc/iotkube/kubeconfig"
            insecureRegistries:
              - "\(fixture.open)"
            registryMirrors:
              "127.0.0.1:\(downPort)":
                - "http://\(fixture.open)"
            registryAuthFile: "\(fixture.directory)/none.json"
            """.write(toFile: config, atomically: true, encoding: .utf8)
        let root = fixture.newStateDirectory()
        let result = try fixture.agent(["pull", "--root", root, "--config", config, "127.0.0.1:\(downPort)/test/plain:1"])
        #expect(result.status == 0, "\(result.output)")
        #expect((try fixture.records(root: root).first?["names"] as? [String]) == ["127.0.0.1:\(downPort)/test/plain:1"])
    }
}
