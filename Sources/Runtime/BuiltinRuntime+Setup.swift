#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif
import OCI

extension BuiltinRuntime {
    /// The plan of a container this runtime sets up itself: the exec fifo, the compiled seccomp
    /// filter, the container's records, its setup hooks and where its terminal goes.
    func prepareOwnSetup(_ spec: RuntimeSpec, id: String, bundle: String, state: String, options: CreateOptions, plan: inout LaunchPlan) throws(RuntimeError) {
        // 0622 like runc: a container process that is not root opens it (through the
        // descriptor it inherited; the state directory itself is closed to it) to wait for start.
        guard mkfifo("\(state)/exec.fifo", 0o622) == 0, chmod("\(state)/exec.fifo", 0o622) == 0 else {
            throw RuntimeError("exec fifo: \(String(cString: strerror(errno)))")
        }
        let seccompPath = try spec.linux?.seccomp.map { (seccomp) throws(RuntimeError) in
            try SeccompFilter.compiled(seccomp, cacheDirectory: "\(root)/.seccomp")
        }
        try plan.addContainer(spec, bundle: bundle, seccompPath: seccompPath, cgroupLayout: cgroups.containerMountLayout)
        try OCIHooks.record(spec.hooks, state: OCIState(ociVersion: spec.ociVersion, id: id, status: .creating, pid: nil, bundle: bundle,
                                                     annotations: spec.annotations), into: &plan)
        switch (spec.process?.terminal == true, options.consoleSocket) {
        case (true, let socket?): plan.record("console", [Self.absolute(socket)])
        case (true, nil) where options.logPath != nil:
            // The monitor keeps the terminal: its output goes to the log, attach reaches it.
            plan.record("monitorterminal", ["1"])
        case (true, nil): throw RuntimeError("process.terminal is true: the terminal's master needs a --console-socket to go to")
        case (false, _?): throw RuntimeError("--console-socket given, but process.terminal is false in \(bundle)/config.json")
        case (false, nil): break
        }
    }
}
