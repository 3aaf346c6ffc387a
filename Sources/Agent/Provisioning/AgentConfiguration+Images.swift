extension AgentConfiguration {
    /// The pre-load directory in effect; nil when turned off.
    public var effectiveImagePreloadDirectory: String? {
        switch imagePreloadDirectory {
        case nil: return stateDir + "/images-preload"
        case ""?: return nil
        case let directory?: return directory
        }
    }

    /// The pre-load directory is absolute, and no allowed hostPath reaches it: a pod writing an
    /// archive there would decide what other pods run under any image name.
    func validateImagePreload(_ path: String) throws(ProvisioningError) {
        guard let preload = effectiveImagePreloadDirectory else { return }
        guard preload.hasPrefix("/") else {
            throw ProvisioningError("\(path): imagePreloadDirectory: \"\(preload)\" must be an absolute path (\"\" turns pre-loading off)")
        }
        let resolvedPreload = Self.resolvedAsFarAsItExists(preload)
        for entry in allowedHostPaths ?? [] {
            let resolved = Self.resolvedAsFarAsItExists(entry)
            if PodAdmission.isWithin(resolvedPreload, resolved) || PodAdmission.isWithin(resolved, resolvedPreload) {
                throw ProvisioningError("\(path): allowedHostPaths: \"\(entry)\" reaches the image pre-load directory \(resolvedPreload): a pod could plant images for other pods; allow narrower paths, or set imagePreloadDirectory elsewhere (\"\" turns pre-loading off)")
            }
        }
    }
}
