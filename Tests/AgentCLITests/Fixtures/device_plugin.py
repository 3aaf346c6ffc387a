"""A device plugin as people write them with grpcio: it serves the kubelet's DevicePlugin
service on a socket in the plugin directory and registers with kubelet.sock there, again
whenever kubelet.sock is made anew (a kubelet restart).

usage: device_plugin.py GENERATED_DIR PLUGIN_DIR RESOURCE ENDPOINT CONTROL_FILE ID=HOST_NODE...
Lines "unhealthy ID" in CONTROL_FILE mark a device unhealthy. PreStartContainer calls are
appended to CONTROL_FILE.prestart. `--register-only VERSION` registers once and prints the result.
"""
import os, sys, time, threading
from concurrent import futures

sys.path.insert(0, sys.argv[1])
import grpc
import deviceplugin_pb2 as api
import deviceplugin_pb2_grpc as rpc

if sys.argv[2] == "--register-only":
    version, directory, resource = sys.argv[3], sys.argv[4], sys.argv[5]
    try:
        with grpc.insecure_channel("unix://" + directory + "/kubelet.sock") as channel:
            rpc.RegistrationStub(channel).Register(api.RegisterRequest(version=version, endpoint="bad.sock", resource_name=resource), timeout=10)
        print("REGISTERED")
    except grpc.RpcError as error:
        print("REFUSED", error.code().name, error.details())
    sys.exit(0)

directory, resource, endpoint, control = sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
nodes = dict(argument.split("=", 1) for argument in sys.argv[6:])


def unhealthy():
    try:
        with open(control) as file:
            return {line.split()[1] for line in file if line.startswith("unhealthy ")}
    except FileNotFoundError:
        return set()


class Plugin(rpc.DevicePluginServicer):
    def GetDevicePluginOptions(self, request, context):
        return api.DevicePluginOptions(pre_start_required=True, get_preferred_allocation_available=True)

    def ListAndWatch(self, request, context):
        last = None
        while context.is_active():
            bad = unhealthy()
            if bad != last:
                last = bad
                yield api.ListAndWatchResponse(devices=[
                    api.Device(ID=id, health="Unhealthy" if id in bad else "Healthy") for id in sorted(nodes)])
            time.sleep(0.2)

    def GetPreferredAllocation(self, request, context):
        # Prefers the highest IDs, so the agent's own pick (the lowest) is told apart.
        return api.PreferredAllocationResponse(container_responses=[
            api.ContainerPreferredAllocationResponse(deviceIDs=sorted(c.available_deviceIDs, reverse=True)[:c.allocation_size])
            for c in request.container_requests])

    def Allocate(self, request, context):
        responses = []
        for container in request.container_requests:
            ids = list(container.devices_ids)
            responses.append(api.ContainerAllocateResponse(
                envs={"WIDGET_IDS": ",".join(ids)},
                devices=[api.DeviceSpec(container_path="/dev/widget-" + id, host_path=nodes[id], permissions="rw") for id in ids],
                annotations={"example.com/widgets": ",".join(ids)}))
        return api.AllocateResponse(container_responses=responses)

    def PreStartContainer(self, request, context):
        with open(control + ".prestart", "a") as file:
            file.write(",".join(request.devices_ids) + "\n")
        return api.PreStartContainerResponse()


socket = os.path.join(directory, endpoint)
if os.path.exists(socket):
    os.unlink(socket)
server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
rpc.add_DevicePluginServicer_to_server(Plugin(), server)
server.add_insecure_port("unix://" + socket)
server.start()

registered = None
kubelet = os.path.join(directory, "kubelet.sock")
while True:
    try:
        # A new socket may reuse the old one's inode number: its times tell them apart.
        status = os.stat(kubelet)
        identity = (status.st_ino, status.st_ctime_ns, status.st_mtime_ns)
    except FileNotFoundError:
        identity = None
    if identity is not None and identity != registered:
        try:
            with grpc.insecure_channel("unix://" + kubelet) as channel:
                rpc.RegistrationStub(channel).Register(api.RegisterRequest(
                    version="v1beta1", endpoint=endpoint, resource_name=resource,
                    options=api.DevicePluginOptions(pre_start_required=True, get_preferred_allocation_available=True)), timeout=5)
            registered = identity
            print("registered", flush=True)
        except grpc.RpcError as error:
            print("registration failed:", error.code().name, error.details(), flush=True)
    time.sleep(0.5)
