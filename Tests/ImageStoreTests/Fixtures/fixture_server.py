"""What the test's helper servers share: a threaded HTTP server on a free loopback port that
prints the port, and that exits when the test's wrapper shell (its parent) is gone."""
import http.server, os, socketserver, threading, time


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


def exit_with_parent():
    parent = os.getppid()
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)


def serve(handler):
    threading.Thread(target=exit_with_parent, daemon=True).start()
    server = Server(("127.0.0.1", 0), handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()
