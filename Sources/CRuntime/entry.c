/*
 * The binary's entry before the Swift runtime: an ELF constructor that runs before main and
 * before any thread exists. It caps malloc arenas, and for the C-only modes (a container's
 * monitor, an exec into a running container) runs them and exits, so the Swift runtime never
 * starts in those processes.
 */
#define _GNU_SOURCE
#include "internal.h"
#include "cruntime.h"
#include <string.h>
#include <unistd.h>

__attribute__((constructor)) static void iotkube_runtime_entry(int argc, char **argv, char **envp) {
    (void)envp;
    /* Two malloc arenas, before any thread exists: glibc gives each allocating thread an arena
     * of its own (up to 8 per core) and keeps what a burst of pod starts freed in each. */
    iotkube_limit_malloc_arenas(2);
    if (argc >= 2 && argv[1] && !strcmp(argv[1], IOTKUBE_MONITOR_ARGUMENT)) _exit(iotkube_monitor_main(argc, argv));
    if (argc >= 2 && argv[1] && !strcmp(argv[1], IOTKUBE_EXEC_ARGUMENT)) _exit(iotkube_exec_main(argc, argv));
}
