#!/usr/bin/env python3
"""Writes packaging/agent-symbol-order.txt: the functions the agent runs, in link order.

The release link (Package.swift) puts these functions first in the agent's code, so that the
code a running agent uses sits on few pages. Unordered, it is spread over all 19 MB of the
binary's code, and the kernel maps more than the page a fault needs (64 KB around it, or the
whole page-cache folio, up to 2 MB, on recent kernels): a process keeps most of the code
resident for the 5 MB it runs (docs/benchmarks.md).

How the functions are found, exactly rather than sampled:
1. The agent is built as released (packaging/release-build.sh: every function in a section of
   its own) and linked once more from copies of its objects and static libraries in which every
   code section is aligned to a page: each function then has pages of its own.
2. That binary goes on a fresh ext4 file system on a loop device with read-ahead off, so the
   file's pages reach the page cache only when a process touches them.
3. The benchmark's memory workload runs on it (Benchmarks/bench.py --quick --only memory: join,
   start, 10 pods, an idle minute, 50 pods, deletion), three times by default: which paths a
   run takes depends on timing (retries, watches, the order pods start in), and a function
   one run misses costs a board a page, or more, of the rest of the code.
4. The pages of the file in the page cache (mincore) are the pages the agent and its monitors
   touched in any run; the functions on them are written first, in their link order.
5. Then the other functions of the same object files (a source file's error paths and rarer
   cases), so that what the runs did not reach still lands near the code that calls it rather
   than anywhere in the binary; what no run touched at all (other commands, unused library
   code) stays behind them.

Needs root (loop device, mount) and what the benchmark needs. Run it when the agent's code has
changed much; `packaging/build-deb.sh` prints how much of the file the current code still has.
    packaging/symbol-order.py [--runs N] [--keep WORK_DIR]
"""
import argparse
import ctypes
import json
import mmap
import os
import re
import shlex
import shutil
import struct
import subprocess
import sys
import tempfile

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ORDER_FILE = os.path.join(TOP, "packaging", "agent-symbol-order.txt")
PAGE = mmap.PAGESIZE  # the unit of residency, and the alignment that gives each function pages of its own


def log(message):
    print(f"symbol-order: {message}", file=sys.stderr, flush=True)


def run(arguments, **options):
    result = subprocess.run(arguments, text=True, capture_output=True, **options)
    if result.returncode != 0:
        sys.exit(f"symbol-order: {shlex.join(arguments)[:300]} failed:\n{result.stderr[-3000:]}")
    return result.stdout


def release_build(*arguments):
    """Runs the release build command of packaging/release-build.sh with `arguments`."""
    script = f'source packaging/release-build.sh && "${{release_build[@]}}" {shlex.join(arguments)}'
    return run(["bash", "-c", script], cwd=TOP).strip()


def agent_link_arguments(bin_dir):
    """The swiftc command SwiftPM links the agent with, from its build manifest."""
    # <scratch>/<triple>/release: the manifest is <scratch>/release.yaml
    triple_dir = os.path.dirname(bin_dir)
    manifest = os.path.join(os.path.dirname(triple_dir), "release.yaml")
    key = f'"C.iotkube-agent-{os.path.basename(triple_dir)}-release.exe":'
    try:
        text = open(manifest).read()
        start = text.index(key)
        line = next(line for line in text[start:].splitlines() if line.strip().startswith("args:"))
        return json.loads(line.strip()[len("args:"):])
    except (OSError, ValueError, StopIteration):
        sys.exit(f"symbol-order: the agent's link command is not in {manifest} (a SwiftPM manifest of another form?)")


def align_code_sections(source, destination):
    """Copies an ELF object, or an ar archive of them, with code sections aligned to a page."""
    data = bytearray(open(source, "rb").read())

    def patch(base):
        if data[base:base + 4] != b"\x7fELF" or data[base + 4] != 2 or data[base + 5] != 1:
            return  # only 64-bit little-endian objects (x86_64, aarch64)
        header_offset, = struct.unpack_from("<Q", data, base + 0x28)
        entry_size, count = struct.unpack_from("<HH", data, base + 0x3A)
        if header_offset == 0:
            return
        if count == 0:  # more than 65279 sections: the count is in section 0
            count, = struct.unpack_from("<Q", data, base + header_offset + 32)
        for index in range(count):
            header = base + header_offset + index * entry_size
            kind, = struct.unpack_from("<I", data, header + 4)
            flags, = struct.unpack_from("<Q", data, header + 8)
            alignment, = struct.unpack_from("<Q", data, header + 48)
            if kind == 1 and flags & 0x6 == 0x6 and alignment < PAGE:  # PROGBITS, ALLOC | EXECINSTR
                struct.pack_into("<Q", data, header + 48, PAGE)

    if data[:8] == b"!<thin>\n":
        sys.exit(f"symbol-order: {source} is a thin archive (its members are files of their own): not supported")
    if data[:8] == b"!<arch>\n":
        position = 8
        while position + 60 <= len(data):
            size = int(data[position + 48:position + 58].decode().strip())
            name = data[position:position + 16].decode(errors="replace")
            # BSD archives put a long name ("#1/<length>") before the member's bytes.
            patch(position + 60 + (int(name[3:].strip()) if name.startswith("#1/") else 0))
            position += 60 + size + (size & 1)
    else:
        patch(0)
    os.makedirs(os.path.dirname(destination), exist_ok=True)
    open(destination, "wb").write(data)


def link_page_aligned(link_arguments, work, output):
    """Links the agent again from page-aligned copies of everything it is linked from."""
    arguments = list(link_arguments)
    arguments[arguments.index("-o") + 1] = output
    jobs = run(arguments + ["-###"]).splitlines()
    linker = next((shlex.split(job) for job in jobs if os.path.basename(shlex.split(job)[0]) in ("clang", "clang++")), None)
    if linker is None:
        sys.exit("symbol-order: swiftc -### showed no clang link job")
    libraries = os.path.join(work, "libraries")
    os.makedirs(libraries, exist_ok=True)
    linked = []
    for argument in linker:
        if argument.endswith(".o") and os.path.isfile(argument):
            copy = os.path.join(work, "objects", argument.lstrip("/"))
            align_code_sections(argument, copy)
            linked.append(copy)
        elif linked and linked[-1] == "-L" and os.path.isdir(argument) and "swift_static" in argument:
            for name in os.listdir(argument):
                if name.endswith(".a"):
                    align_code_sections(os.path.join(argument, name), os.path.join(libraries, name))
            linked[-1:] = ["-L", libraries, "-L", argument]
        elif argument.startswith("-l:") and argument.endswith(".a"):
            found = run(["cc", f"-print-file-name={argument[3:]}"]).strip()
            if not os.path.isabs(found):
                sys.exit(f"symbol-order: the C compiler does not find {argument[3:]}")
            copy = os.path.join(libraries, argument[3:])
            align_code_sections(found, copy)
            linked.append(copy)
        else:
            linked.append(argument)
    if not any(argument.startswith(os.path.join(work, "objects")) for argument in linked) or "-L" not in linked or libraries not in linked:
        sys.exit("symbol-order: the link command has another form than expected (no objects or no swift_static -L replaced)")
    run(linked + [f"-Wl,-Map={os.path.join(work, 'agent.map')}", "-Wl,--no-demangle"])


def resident_pages(path):
    """Indexes of the file's pages that are in the page cache (mincore on a mapping of it)."""
    size = os.path.getsize(path)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p]
    descriptor = os.open(path, os.O_RDONLY)
    try:
        address = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, descriptor, 0)
        if address in (None, ctypes.c_void_p(-1).value):
            sys.exit(f"symbol-order: mmap {path}: {os.strerror(ctypes.get_errno())}")
        pages = (size + PAGE - 1) // PAGE
        vector = ctypes.create_string_buffer(pages)
        status = libc.mincore(address, size, vector)
        libc.munmap(address, size)
        if status != 0:
            sys.exit(f"symbol-order: mincore {path}: {os.strerror(ctypes.get_errno())}")
        return {index for index in range(pages) if vector.raw[index] & 1}
    finally:
        os.close(descriptor)


def touched_functions(binary, pages):
    """Function symbols on the touched pages, in address order."""
    segments = []
    for line in run(["readelf", "-lW", binary]).splitlines():
        fields = line.split()
        if fields and fields[0] == "LOAD":
            segments.append((int(fields[2], 16), int(fields[1], 16), int(fields[4], 16)))
    functions = []
    for line in run(["readelf", "-sW", binary]).splitlines():
        fields = line.split()
        if len(fields) >= 8 and fields[3] == "FUNC" and fields[6] != "UND":
            address, size = int(fields[1], 16), int(fields[2], 0)
            if size:
                functions.append((address, size, fields[7]))
    functions.sort()
    names, seen, code = [], set(), 0
    for address, size, name in functions:
        offset = next((address - start + file_offset for start, file_offset, length in segments
                       if start <= address < start + length), None)
        if offset is None or name in seen:
            continue
        if any(page in pages for page in range(offset // PAGE, (offset + size - 1) // PAGE + 1)):
            seen.add(name)
            names.append(name)
            code += size
    return names, code, len(functions)


def functions_by_object(link_map):
    """The symbols of each object's code sections, from the linker's map, objects in link order."""
    line_pattern = re.compile(r"^\s*[0-9a-f]+\s+[0-9a-f]+\s+[0-9a-f]+\s+\d+( +)(.*)$")
    objects, in_text, current = {}, False, None
    with open(link_map) as file:
        for line in file:
            match = line_pattern.match(line.rstrip("\n"))
            if not match:
                continue
            depth, text = len(match.group(1)), match.group(2)
            if depth <= 2:  # an output section
                if in_text:
                    break
                in_text = text == ".text"
            elif in_text and depth < 12:  # an input section: "object:(section)"
                current = []
                objects.setdefault(text.rsplit(":(", 1)[0], []).append(current)
            elif in_text and current is not None:  # a symbol in it
                current.append(text)
    return objects


def warm_functions(link_map, hot):
    """The untouched sections' first symbols in the objects that have touched code."""
    hot = set(hot)
    warm = []
    for sections in functions_by_object(link_map).values():
        if any(name in hot for section in sections for name in section):
            warm += [section[0] for section in sections if section and not any(name in hot for name in section)]
    return warm


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="runs of the workload (default 3)")
    parser.add_argument("--keep", help="keep the work directory here (page-aligned objects, binary)")
    options = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("symbol-order: needs root (a loop device and a mount)")
    log("building the agent and the server as released")
    release_build("--product", "iotkube-agent")
    release_build("--product", "iotkube-server")
    bin_dir = release_build("--show-bin-path")
    work = options.keep or tempfile.mkdtemp(prefix="symbol-order-")
    os.makedirs(work, exist_ok=True)
    image, mount = os.path.join(work, "filesystem.img"), os.path.join(work, "mount")
    mounted = False
    try:
        log("linking a page-aligned agent")
        aligned = os.path.join(work, "iotkube-agent")
        link_page_aligned(agent_link_arguments(bin_dir), work, aligned)
        size = os.path.getsize(aligned) + os.path.getsize(os.path.join(bin_dir, "iotkube-server"))
        with open(image, "wb") as file:
            file.truncate(size * 2 + (256 << 20))
        run(["mkfs.ext4", "-q", "-F", image])
        os.makedirs(mount, exist_ok=True)
        run(["mount", "-o", "loop", image, mount])
        mounted = True
        shutil.copy2(aligned, mount)
        shutil.copy2(os.path.join(bin_dir, "iotkube-server"), mount)
        os.sync()
        # Mounted again: the cache starts empty. Read-ahead off: only touched pages enter it.
        run(["umount", mount])
        mounted = False
        run(["mount", "-o", "loop", image, mount])
        mounted = True
        device = os.path.basename(run(["findmnt", "-no", "SOURCE", mount]).strip())
        with open(f"/sys/block/{device}/queue/read_ahead_kb", "w") as file:
            file.write("0")
        pages = set()
        for number in range(1, options.runs + 1):
            log(f"running the benchmark's memory workload on it ({number} of {options.runs})")
            subprocess.run([sys.executable, os.path.join(TOP, "Benchmarks", "bench.py"), "--bin", mount, "--quick", "--only", "memory"],
                           check=True, cwd=TOP, stdout=subprocess.DEVNULL)
            pages |= resident_pages(os.path.join(mount, "iotkube-agent"))  # after each run: reclaim may drop pages
        code_pages = os.path.getsize(aligned) // PAGE
        if len(pages) > code_pages // 2:
            sys.exit(f"symbol-order: {len(pages)} of {code_pages} pages resident: something read the whole binary, not only the runs")
        names, code, total = touched_functions(os.path.join(mount, "iotkube-agent"), pages)
        if len(names) < 1000:
            sys.exit(f"symbol-order: only {len(names)} functions touched: the workload did not run the agent")
        warm = warm_functions(os.path.join(work, "agent.map"), names)
        temporary = ORDER_FILE + ".tmp"
        with open(temporary, "w") as file:
            file.write("\n".join(names + warm) + "\n")
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, ORDER_FILE)
        # SwiftPM does not see the order file as an input of the link: the next build relinks
        # the agent only if it is gone.
        os.remove(os.path.join(bin_dir, "iotkube-agent"))
        log(f"{len(names)} of {total} functions touched ({code / 1e6:.1f} MB of code), then {len(warm)} of the same files:"
            f" written to {os.path.relpath(ORDER_FILE, TOP)}")
    finally:
        if mounted and subprocess.run(["umount", mount]).returncode != 0:
            # Something the workload left behind still uses it: detach it lazily, and keep the
            # work directory (removing it would reach into the mounted image).
            subprocess.run(["umount", "-l", mount])
            log(f"{mount} was busy: unmounted lazily; {work} is kept")
        elif not options.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
