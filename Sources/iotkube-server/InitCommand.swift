import ArgumentParser
import ControlPlane

/// `iotkube-server init`: creates the cluster CA, serving certificate, store and admin kubeconfig.
struct InitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Create a new cluster's CA, serving certificate, store and admin kubeconfig.")

    @Option(help: "The data directory (created if missing).")
    var dataDir: String

    @Option(help: "The address agents and kubectl reach the server at (IP or DNS name); put in the certificate and kubeconfig.")
    var advertiseAddress = "127.0.0.1"

    @Option(help: "The HTTPS port the server will listen on (written into the kubeconfig).")
    var port = 6443

    func run() throws {
        let files = ClusterFiles(directory: dataDir)
        do {
            try files.initialize(advertiseAddress: advertiseAddress, port: port)
        } catch {
            throw ValidationError("init failed: \(error)")
        }
        print("Initialised a new cluster in \(dataDir).")
        print("CA public key pin: \(try files.caPublicKeyPin())")
        print("Admin kubeconfig: \(files.adminKubeconfigPath)")
        print("Start the server: iotkube-server run --data-dir \(dataDir)")
    }
}
