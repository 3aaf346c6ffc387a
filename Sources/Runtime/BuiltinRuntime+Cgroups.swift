import OCI

extension BuiltinRuntime {
    /// The cgroup a spec's `cgroupsPath` names, relative to the hierarchy root: absolute as
    /// given, relative (or none) below `cgroupParent`.
    func cgroupPath(_ spec: RuntimeSpec, id: String) -> String {
        guard let path = spec.linux?.cgroupsPath, !path.isEmpty else { return "\(cgroupParent)/\(id)" }
        if path.hasPrefix("/") { return String(path.dropFirst()) }
        return "\(cgroupParent)/\(path)"
    }

    /// Puts the container's cgroup into the plan: made now with its limits (cgroupfs), or a
    /// systemd scope the monitor starts with the init's pid (`slice:prefix:name`; its files
    /// are written once the init is in it), or left to an external runtime. Returns the
    /// cgroup's path, the cgroup.procs files the init goes through (none yet for a scope) and
    /// the scope's unit.
    func planCgroup(_ spec: RuntimeSpec, id: String, state: String, plan: inout LaunchPlan) throws(RuntimeError)
        -> (path: String, procs: [String], systemdScope: String?) {
        var result: (path: String, procs: [String], systemdScope: String?) = (cgroupPath(spec, id: id), [], nil)
        if backend == nil, SystemdUnits.isSystemdForm(spec.linux?.cgroupsPath) {
            let scope = try SystemdUnits.scope(cgroupsPath: spec.linux?.cgroupsPath ?? "")
            result = (scope.path, [], scope.unit)
            plan.record("systemdscope", [scope.unit, "/" + scope.path])
            let properties = SystemdUnits.scopeProperties(slice: scope.slice, description: "iotkube container \(id)",
                                                         groupOOMKill: spec.linux?.resources?.unified?["memory.oom.group"] == "1")
                + SystemdUnits.resourceProperties(spec.linux?.resources)
            for property in properties { plan.record("unitproperty", property.planTokens) }
            plan.record("execfifo", ["\(state)/exec.fifo"])
        } else if backend == nil {
            result.procs = try cgroups.create(result.path, resources: spec.linux?.resources)
            for file in result.procs { plan.record("cgroupprocs", [file]) }
            plan.record("execfifo", ["\(state)/exec.fifo"])
        } else {
            result.procs = cgroups.procsFiles(result.path)   // the backend makes it
        }
        if let events = cgroups.memoryEventsFile(result.path) { plan.record("memoryevents", [events]) }
        return result
    }
}
