import Foundation
import IotkubeTestSupport
import OCI
import Testing

/// OCI hooks through the runtime CLI: every kind runs at its point with the state on stdin,
/// in order; a failing setup hook stops the container with the hook named, a hung one is cut
/// off at its timeout, a failing poststart hook is a warning; bad hooks are refused by field.
@Suite(.ownThread, .enabled(if: RuntimeFixture.ready, "\(RuntimeFixture.reason)"))
struct RuntimeHookTests {
    /// A hook that saves its stdin as `<directory>/<name>.json`, appends its name to
    /// `<directory>/order` and shows HOOK_ENV.
    static func recorder(_ name: String, directory: String, delay: Bool = false) -> RuntimeSpec.Hook {
        RuntimeSpec.Hook(path: "/bin/sh", args: ["sh", "-c", "cat > \(directory)/\(name).json; \(delay ? "sleep 1; " : "")echo \"\(name) $HOOK_ENV\" >> \(directory)/order", name],
                         env: ["HOOK_ENV=env-\(name)", "PATH=/bin:/usr/bin"], timeout: 10)
    }

    static func read(_ path: String) -> String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }

    @Test func everyKindRunsAtItsPointWithTheState() throws {
        let directory = NSTemporaryDirectory() + "iotkube-hooks-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let bundle = try RuntimeFixture.bundle(["sh", "-c", "cat /hooks/order; sleep 300"]) { spec in
            spec.mounts?.append(RuntimeSpec.Mount(destination: "/hooks", type: "bind", source: directory, options: ["rbind", "rw"]))
            var hooks = RuntimeSpec.Hooks()
            hooks.prestart = [Self.recorder("prestart", directory: directory)]
            hooks.createRuntime = [Self.recorder("createRuntime", directory: directory)]
            hooks.createContainer = [Self.recorder("createContainer", directory: directory)]
            // Inside the container after pivot_root: the container's sh, the directory at /hooks.
            // A slow one: `start` runs the poststart hooks only after it has finished.
            hooks.startContainer = [Self.recorder("startContainer", directory: "/hooks", delay: true)]
            hooks.poststart = [Self.recorder("poststart", directory: directory)]
            hooks.poststop = [Self.recorder("poststop", directory: directory)]
            spec.hooks = hooks
        }
        let root = RuntimeFixture.stateRoot()
        let created = try RuntimeFixture.runtime(root, ["create", "--bundle", bundle, "--container-log", bundle + "/out.log", "hooked"])
        #expect(created.status == 0, "\(created.output)")
        #expect(Self.read(directory + "/order") == "prestart env-prestart\ncreateRuntime env-createRuntime\ncreateContainer env-createContainer\n")
        let pid = try #require(try RuntimeFixture.state(root, "hooked")["pid"] as? Int)
        #expect(try RuntimeFixture.runtime(root, ["start", "hooked"]).status == 0)
        #expect(try RuntimeFixture.runtime(root, ["delete", "--force", "hooked"]).status == 0)
        #expect(Self.read(directory + "/order") == """
            prestart env-prestart
            createRuntime env-createRuntime
            createContainer env-createContainer
            startContainer env-startContainer
            poststart env-poststart
            poststop env-poststop

            """)
        for (name, status) in [("prestart", "creating"), ("createRuntime", "creating"), ("createContainer", "creating"), ("startContainer", "created"),
                               ("poststart", "running"), ("poststop", "stopped")] {
            let state = try JSONSerialization.jsonObject(with: Data(Self.read("\(directory)/\(name).json").utf8)) as? [String: Any]
            #expect(state?["id"] as? String == "hooked" && state?["status"] as? String == status, "\(name): \(String(describing: state))")
            #expect(state?["bundle"] as? String == bundle, "\(name)")
            #expect(state?["pid"] as? Int == (name == "poststop" ? 0 : pid), "\(name): the host's pid of the container")
        }
        // The container's process started after every setup hook.
        for _ in 0..<50 where !Self.read(bundle + "/out.log").contains("startContainer") { Thread.sleep(forTimeInterval: 0.1) }
        #expect(Self.read(bundle + "/out.log").contains("startContainer env-startContainer"))
    }

    @Test(arguments: ["createRuntime", "createContainer", "timeout"])
    func aFailingSetupHookStopsTheContainerNamingIt(_ kind: String) throws {
        let bundle = try RuntimeFixture.bundle(["sh", "-c", "echo SHOULD-NOT-RUN"]) { spec in
            var hooks = RuntimeSpec.Hooks()
            let failing = RuntimeSpec.Hook(path: "/bin/sh", args: ["sh", "-c", "echo nope >&2; exit 3"])
            switch kind {
            case "createRuntime": hooks.createRuntime = [failing]
            case "createContainer": hooks.createContainer = [failing]
            default: hooks.createRuntime = [RuntimeSpec.Hook(path: "/bin/sleep", args: ["sleep", "30"], timeout: 1)]
            }
            spec.hooks = hooks
        }
        let root = RuntimeFixture.stateRoot()
        let started = Date()
        let result = try RuntimeFixture.runtime(root, ["run", "--bundle", bundle, "refused"])
        #expect(result.status != 0 && !result.output.contains("SHOULD-NOT-RUN"), "\(result.output)")
        if kind == "timeout" {
            #expect(result.output.contains("createRuntime hook /bin/sleep: timed out after 1 s"), "\(result.output)")
            #expect(Date().timeIntervalSince(started) < 20)
        } else {
            #expect(result.output.contains("\(kind) hook /bin/sh: exited with 3: nope"), "\(result.output)")
        }
        #expect((try? FileManager.default.contentsOfDirectory(atPath: root))?.filter { !$0.hasPrefix(".") }.isEmpty ?? true, "no state left")
    }

    @Test func aFailingPoststartHookIsAWarning() throws {
        let bundle = try RuntimeFixture.bundle(["sh", "-c", "echo ran"]) { spec in
            var hooks = RuntimeSpec.Hooks()
            hooks.poststart = [RuntimeSpec.Hook(path: "/bin/false")]
            spec.hooks = hooks
        }
        let result = try RuntimeFixture.runtime(RuntimeFixture.stateRoot(), ["run", "--bundle", bundle, "warned"])
        #expect(result.status == 0 && result.output.contains("ran"), "\(result.output)")
        #expect(result.output.contains("warning: container warned: poststart hook /bin/false: exited with 1"), "\(result.output)")
    }

    @Test(arguments: [
        (RuntimeSpec.Hook(path: "bin/true"), "hooks.prestart[0].path: \"bin/true\" is not an absolute path"),
        (RuntimeSpec.Hook(path: "/bin/true", timeout: 0), "hooks.prestart[0].timeout: 0 must be 1 to 86400 seconds"),
        (RuntimeSpec.Hook(path: "/bin/true", env: ["NOVALUE"]), "hooks.prestart[0].env: \"NOVALUE\" is not NAME=value"),
    ])
    func badHooksAreRefusedByField(_ hook: RuntimeSpec.Hook, _ message: String) throws {
        let bundle = try RuntimeFixture.bundle(["true"]) { spec in
            var hooks = RuntimeSpec.Hooks()
            hooks.prestart = [hook]
            spec.hooks = hooks
        }
        let result = try RuntimeFixture.runtime(RuntimeFixture.stateRoot(), ["create", "--bundle", bundle, "bad"])
        #expect(result.status != 0 && result.output.contains(message), "\(result.output)")
    }
}
