import KubeModel
import OCI
import SystemSupport

/// Where a container's OCI bundle (its `config.json`) lives: beside the runtime's state on
/// tmpfs (`<runtime root>/.bundles/<id>`), as containerd and CRI-O keep theirs under /run.
/// The configuration holds the container's environment, Secret values included, which must
/// not reach the flash; /run outlives the agent (containers it adopts keep their bundle for
/// exec) and goes with a reboot, as the containers do. The root file system stays on flash.
public enum ContainerBundle {
    /// The bundle directory of container `id`; the runtime skips dot-names when listing.
    public static func directory(runtimeRoot: String, id: String) -> String { "\(runtimeRoot)/.bundles/\(id)" }

    /// Writes `config.json` (0600) into a fresh bundle directory (0700); returns the directory.
    public static func write(_ spec: RuntimeSpec, runtimeRoot: String, id: String) throws -> String {
        let bundle = directory(runtimeRoot: runtimeRoot, id: id)
        try FileTree.makeDirectories(runtimeRoot, mode: 0o711)   // as the runtime makes it
        try FileTree.makeDirectories(runtimeRoot + "/.bundles", mode: 0o700)
        try FileTree.remove(bundle)
        try FileTree.makeDirectories(bundle, mode: 0o700)
        try AtomicFile.write(try KubeJSON.encode(spec), to: bundle + "/config.json", mode: 0o600)
        return bundle
    }

    /// Removes the bundle of container `id` (nothing when there is none).
    public static func remove(runtimeRoot: String, id: String) {
        try? FileTree.remove(directory(runtimeRoot: runtimeRoot, id: id))
    }
}
