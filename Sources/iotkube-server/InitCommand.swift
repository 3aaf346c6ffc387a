import ArgumentParser
import ControlPlane
import SystemSupport

/// `iotkube-server init`: creates the cluster CA, serving certificate, store and admin kubeconfig.
struct InitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Create a new cluster's CA, serving certificate, store and admin kubeconfig.")

    @Option(help: "The data directory (created if missing).")
    var dataDir: String

    @Option(help: "The address agents and kubectl reach the server at (IP or DNS name); put in the certificate, kubeconfig and join tokens. Default: this machine's primary address (the default route's), else 127.0.0.1.")
    var advertiseAddress: String?

    @Option(help: "The HTTPS port the server will listen on (written into the kubeconfig).")
    var port = 6443

    func run() throws {
        let files = ClusterFiles(directory: dataDir)
        let chosen = advertiseAddress ?? PrimaryAddress.ipv4() ?? "127.0.0.1"
        do {
            try files.initialize(advertiseAddress: chosen, port: port)
        } catch {
            throw ValidationError("init failed: \(error)")
        }
        print("Initialised a new cluster in \(dataDir).")
        print("CA public key pin: \(try files.caPublicKeyPin())")
        print("Admin kubeconfig: \(files.adminKubeconfigPath)")
        print("Boards reach the server at https://\(ClusterFiles.hostForURL(chosen)):\(port)\(advertiseAddress == nil ? " (this machine's primary address; another address or DNS name: init a new cluster with --advertise-address)" : "").")
        print("Start the server: iotkube-server run --data-dir \(dataDir)")
    }
}
