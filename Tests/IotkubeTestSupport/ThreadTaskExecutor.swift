import Foundation

/// A task executor with one thread of its own: jobs run there in order, so a test that blocks
/// (waits for a process, sleeps, does long synchronous work) blocks that thread and not one of the
/// few Swift concurrency threads every other test's async code shares (two on a 2-core machine).
public final class ThreadTaskExecutor: TaskExecutor, @unchecked Sendable {
    private let condition = NSCondition()
    private var jobs: [UnownedJob] = []
    private var stopping = false

    /// Starts the thread; `name` names it in a debugger or `top -H`.
    public init(name: String) {
        // Named from inside: a new thread starts with its creator's name. Foundation's setter
        // renames the system thread only once `start()` has recorded it, which the new thread
        // may beat (it then kept its creator's name, "…oot.default-qos"): the kernel's name is
        // written directly.
        let thread = Thread { [self] in
            let short = String(name.prefix(15))
            Thread.current.name = short
            try? short.write(toFile: "/proc/thread-self/comm", atomically: false, encoding: .utf8)
            self.runJobs()
        }
        thread.stackSize = 8 << 20
        thread.start()
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let unowned = UnownedJob(job)
        condition.lock()
        jobs.append(unowned)
        condition.signal()
        condition.unlock()
    }

    /// Lets the thread end once the jobs already queued have run.
    public func shutdown() {
        condition.lock()
        stopping = true
        condition.signal()
        condition.unlock()
    }

    private func runJobs() {
        while true {
            condition.lock()
            while jobs.isEmpty && !stopping { condition.wait() }
            if jobs.isEmpty { condition.unlock(); return }
            let next = jobs.removeFirst()
            condition.unlock()
            next.runSynchronously(on: asUnownedTaskExecutor())
        }
    }
}
