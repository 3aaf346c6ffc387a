"""The receiving end of an OCI console socket, as a container manager has it: listens on a Unix
socket, receives the pseudo-terminal master (SCM_RIGHTS), types the given input into it and
prints everything the container wrote on its terminal until the terminal closes.
usage: console_receiver.py SOCKET_PATH INPUT"""
import array
import os
import socket
import sys

path, typed = sys.argv[1], sys.argv[2]
server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
server.bind(path)
server.listen(1)
print("listening", flush=True)
connection, _ = server.accept()
fds = array.array("i")
message, ancillary, _, _ = connection.recvmsg(256, socket.CMSG_SPACE(fds.itemsize))
for level, kind, data in ancillary:
    if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
        fds.frombytes(data[: len(data) - (len(data) % fds.itemsize)])
if not fds:
    print("no descriptor received", flush=True)
    sys.exit(1)
master = fds[0]
print("name=" + message.decode(), flush=True)
os.write(master, typed.encode())
output = b""
while True:
    try:
        chunk = os.read(master, 4096)
    except OSError:  # EIO: the last holder of the terminal closed it
        break
    if not chunk:
        break
    output += chunk
print(output.decode(errors="replace"), flush=True)
