import Agent
@testable import ImageStore
import KubeModel
import OCI
import Testing

@Suite struct ImageReferenceTests {
    @Test(arguments: [
        ("busybox", "docker.io/library/busybox:latest"),
        ("busybox:1.36", "docker.io/library/busybox:1.36"),
        ("library/busybox", "docker.io/library/busybox:latest"),
        ("user/app:v2", "docker.io/user/app:v2"),
        ("index.docker.io/library/alpine:3", "docker.io/library/alpine:3"),
        ("localhost/app", "localhost/app:latest"),
        ("localhost:5000/team/app:dev-1.2", "localhost:5000/team/app:dev-1.2"),
        ("registry.example.com/a/b/c", "registry.example.com/a/b/c:latest"),
        ("[::1]:5000/app:x", "[::1]:5000/app:x"),
        ("127.0.0.1:5000/app@sha256:" + String(repeating: "ab", count: 32),
         "127.0.0.1:5000/app@sha256:" + String(repeating: "ab", count: 32)),
        ("quay.io/app:1@sha256:" + String(repeating: "0", count: 64), "quay.io/app:1@sha256:" + String(repeating: "0", count: 64)),
        ("a__b/c.d-e---f", "docker.io/a__b/c.d-e---f:latest"),
    ])
    func normalises(_ input: String, _ expected: String) throws {
        #expect(try ImageReference(parsing: input).description == expected)
    }

    @Test(arguments: [
        ("", "empty"),
        ("Busybox", "repository"),
        ("busybox:", "tag"),
        ("busybox:-bad", "tag"),
        ("app@sha256:abc", "needs 64"),
        ("app@md5:" + String(repeating: "0", count: 32), "unsupported algorithm"),
        ("a/../b", "repository"),
        ("host:notaport/app", "registry"),
        ("bad name", "spaces"),
        ("a_/b", "repository"),
    ])
    func refuses(_ input: String, _ phrase: String) {
        #expect {
            _ = try ImageReference(parsing: input)
        } throws: { error in
            "\(error)".contains(phrase) && "\(error)".contains("image reference")
        }
    }

    @Test func digestWinsOverTagWhenFetching() throws {
        let digest = "sha256:" + String(repeating: "c", count: 64)
        let reference = try ImageReference(parsing: "r.io/app:1@\(digest)")
        #expect(reference.manifestReference == digest)
        #expect(reference.pinned(to: try Digest(digest)) == "r.io/app@\(digest)")
    }

    @Test(arguments: [
        ("linux/amd64", "linux/amd64"), ("linux/arm64", "linux/arm64/v8"), ("linux/aarch64", "linux/arm64/v8"),
        ("linux/arm/7", "linux/arm/v7"), ("linux/armhf", "linux/arm/v7"), ("linux/armel", "linux/arm/v6"), ("linux/x86_64", "linux/amd64"),
    ])
    func platformsNormalise(_ input: String, _ expected: String) throws {
        #expect(try Platform(parsing: input).description == expected)
    }

    @Test func armBoardsRunOlderVariantsAndPreferTheirOwn() throws {
        let v7 = Platform(architecture: "arm", variant: "v7")
        let v6 = Platform(architecture: "arm", variant: "v6")
        #expect(v7.score(v6) != nil)
        #expect(v7.score(v7)! > v7.score(v6)!)
        #expect(v6.score(v7) == nil)
        #expect(v7.score(Platform(architecture: "arm64")) == nil)
        let arm64 = Platform(architecture: "arm64", variant: "v8")
        #expect(arm64.score(Platform(architecture: "arm64")) != nil)
        #expect(arm64.score(Platform(architecture: "amd64")) == nil)
        #expect(Platform(architecture: "amd64").score(Platform(os: "windows", architecture: "amd64")) == nil)
    }

    @Test(arguments: [
        ("armv7l", "processor : 0\nCPU architecture: 7\n", "linux/arm/v7"),
        ("armv6l", "CPU architecture: 6\n", "linux/arm/v6"),
        ("armv7l", "", "linux/arm/v7"),
        ("armv8l", "CPU architecture: 8\n", "linux/arm/v7"),
        ("aarch64", "", "linux/arm64/v8"),
        ("x86_64", "", "linux/amd64"),
    ])
    func hostPlatformFromUnameAndCpuinfo(_ machine: String, _ cpuinfo: String, _ expected: String) {
        #expect(HostPlatform.platform(machine: machine, cpuinfo: cpuinfo).description == expected)
    }

    @Test func dockerConfigCredentials() throws {
        let auth = RegistryCredentials.base64Encode(Array("robot:pa:ss".utf8))
        let json = """
            {"auths": {"https://index.docker.io/v1/": {"auth": "\(auth)"},
                       "registry.local:5000": {"username": "u", "password": "p"},
                       "token.example": {"identitytoken": "tok"}}}
            """
        let credentials = try RegistryCredentials(dockerConfigJSON: Array(json.utf8), source: "secret default/pull")
        #expect(credentials.lookup("docker.io") == .init(username: "robot", password: "pa:ss"))
        #expect(credentials.lookup("registry.local:5000") == .init(username: "u", password: "p"))
        #expect(credentials.lookup("token.example")?.password == "tok")
        #expect(credentials.lookup("other") == nil)
        #expect(throws: ImageStoreError.self) {
            try RegistryCredentials(dockerConfigJSON: Array(#"{"auths": {"x": {"auth": "%%%"}}}"#.utf8), source: "f")
        }
        #expect(throws: ImageStoreError.self) {
            try RegistryCredentials(dockerConfigJSON: Array("not json".utf8), source: "f")
        }
    }

    @Test func authenticationChallenges() throws {
        let bearer = try #require(AuthenticationChallenge(#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#))
        #expect(bearer.scheme == "bearer")
        #expect(bearer.parameters == ["realm": "https://auth.example/token", "service": "registry.example", "scope": "repository:a/b:pull,push"])
        let basic = try #require(AuthenticationChallenge(#"Basic realm="iotkube \"test\"""#))
        #expect(basic.scheme == "basic")
        #expect(basic.parameters["realm"] == #"iotkube "test""#)
    }
}

@Suite struct PullSecretTests {
    @Test func dockerConfigJSONSecret() throws {
        var secret = Secret(metadata: ObjectMeta(name: "regcred", namespace: "apps"))
        secret.type = "kubernetes.io/dockerconfigjson"
        secret.data = [".dockerconfigjson": Base64Bytes(#"{"auths":{"reg.local:5000":{"username":"a","password":"b"}}}"#)]
        #expect(try RegistryCredentials(pullSecret: secret).lookup("reg.local:5000") == .init(username: "a", password: "b"))
        secret.type = "Opaque"
        #expect {
            try RegistryCredentials(pullSecret: secret)
        } throws: { error in
            "\(error)" == "secret apps/regcred is of type Opaque, not kubernetes.io/dockerconfigjson"
        }
        secret.type = "kubernetes.io/dockercfg"
        #expect(throws: ImageStoreError.self) { try RegistryCredentials(pullSecret: secret) }
    }
}
