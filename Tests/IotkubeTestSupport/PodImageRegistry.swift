import Foundation

/// A real OCI registry (Debian's `docker-registry`) on a loopback port holding a busybox image
/// built in the test from the host's busybox-static with umoci and pushed with skopeo:
/// `<address>/test/busybox:1` (every applet linked, default command `sh`).
public final class PodImageRegistry: @unchecked Sendable {
    public let directory: String
    public private(set) var address = ""
    private var registry: BackgroundProcess?

    public static let requiredTools = ["docker-registry", "umoci", "skopeo", "busybox"]
    public static var toolsPresent: Bool { requiredTools.allSatisfy(toolAvailable) }

    /// One registry for the whole test run.
    public static let shared: Result<PodImageRegistry, any Error> = Result { try PodImageRegistry() }

    /// The busybox image's reference.
    public var busybox: String { "\(address)/test/busybox:1" }

    private init() throws {
        directory = NSTemporaryDirectory() + "iotkube-pod-registry-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory + "/storage", withIntermediateDirectories: true)
        let port = try ServerProcess.freePort()
        let config = """
            version: 0.1
            log:
              level: warn
            storage:
              filesystem:
                rootdirectory: \(directory)/storage
            http:
              addr: 127.0.0.1:\(port)
            """
        try config.write(toFile: directory + "/registry.yml", atomically: true, encoding: .utf8)
        registry = try BackgroundProcess("/usr/bin/docker-registry", ["serve", directory + "/registry.yml"], logPath: directory + "/registry.log")
        address = "127.0.0.1:\(port)"
        var up = false
        for _ in 0..<100 {
            if let result = try? ServerProcess.run("/usr/bin/curl", ["-sf", "http://\(address)/v2/"]), result.status == 0 { up = true; break }
            Thread.sleep(forTimeInterval: 0.1)
        }
        guard up else { throw TestFailure("docker-registry did not start: \((try? String(contentsOfFile: directory + "/registry.log", encoding: .utf8)) ?? "")") }

        let layout = directory + "/layout", bundle = directory + "/bundle"
        let script = """
            set -e
            umoci init --layout '\(layout)'
            umoci new --image '\(layout):busybox'
            umoci unpack --image '\(layout):busybox' '\(bundle)'
            mkdir -p '\(bundle)/rootfs/bin' '\(bundle)/rootfs/etc' '\(bundle)/rootfs/tmp' '\(bundle)/rootfs/www'
            cp /bin/busybox '\(bundle)/rootfs/bin/busybox'
            for applet in $(/bin/busybox --list); do [ "$applet" = busybox ] || ln -sf busybox '\(bundle)/rootfs/bin/'"$applet"; done
            printf 'root:x:0:0:root:/root:/bin/sh\\nnobody:x:65534:65534:nobody:/:/bin/false\\n' > '\(bundle)/rootfs/etc/passwd'
            printf 'root:x:0:\\nnogroup:x:65534:\\n' > '\(bundle)/rootfs/etc/group'
            echo 'served by busybox' > '\(bundle)/rootfs/www/index.html'
            chmod 1777 '\(bundle)/rootfs/tmp'
            umoci repack --image '\(layout):busybox' '\(bundle)'
            umoci config --image '\(layout):busybox' --config.cmd sh --config.env PATH=/bin
            skopeo copy -q --dest-tls-verify=false 'oci:\(layout):busybox' 'docker://\(address)/test/busybox:1'
            """
        let result = try ServerProcess.run("/bin/sh", ["-c", script], timeout: 300)
        guard result.status == 0 else { throw TestFailure("building the busybox image: \(result.output)") }
    }
}
