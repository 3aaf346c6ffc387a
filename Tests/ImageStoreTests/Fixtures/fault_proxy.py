#!/usr/bin/env python3
"""A misbehaving registry in front of a real one. Requests for /v2/fault/<mode>/<repo>/... are
forwarded to the real registry as /v2/<repo>/... and then spoiled according to <mode>:
  hang           accept the request and never answer
  truncate       blob bodies stop halfway (Content-Length promises the whole)
  truncate-once  the first GET of each blob stops halfway; later GETs (ranges) are honest
  stall          blob bodies stop halfway and the connection stays open, silent
  corrupt        one byte of each blob body flipped
  bigmanifest    manifests fetched by digest get 8 MiB of trailing whitespace
  norange        Range headers dropped (the whole blob comes back with 200)
  bigblob        blob bodies get 1 MiB more than the real blob (and its descriptor) has
Everything else is passed through. Prints the port it listens on.

usage: fault_proxy.py UPSTREAM_HOST:PORT
"""
import http.client, http.server, sys, threading, time
from fixture_server import serve

UPSTREAM = sys.argv[1]
seen = set()
lock = threading.Lock()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        mode, path = None, self.path
        if path.startswith("/v2/fault/"):
            rest = path[len("/v2/fault/"):]
            mode, _, tail = rest.partition("/")
            path = "/v2/" + tail
        if mode == "hang":
            time.sleep(3600)
            return
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
        is_blob = "/blobs/" in path
        if mode == "norange" or (mode == "truncate-once" and is_blob and path not in seen):
            headers.pop("Range", None)
        conn = http.client.HTTPConnection(UPSTREAM, timeout=30)
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        body = response.read()
        status = response.status
        out_headers = [(k, v) for k, v in response.getheaders()
                       if k.lower() not in ("content-length", "connection", "transfer-encoding")]
        full_length = len(body)
        cut = False
        stall = False
        if is_blob and status in (200, 206):
            if mode == "truncate":
                cut = True
            elif mode == "stall":
                stall = True
            elif mode == "truncate-once":
                with lock:
                    if path not in seen:
                        seen.add(path)
                        cut = True
            elif mode == "corrupt" and body:
                middle = len(body) // 2
                body = body[:middle] + bytes([body[middle] ^ 0xFF]) + body[middle + 1:]
        if mode == "bigblob" and is_blob and status == 200:
            body = body + bytes(1 << 20)
            full_length = len(body)
        if mode == "bigmanifest" and "/manifests/sha256:" in path and status == 200:
            body = body + b" " * (8 << 20)
            full_length = len(body)
        self.send_response(status)
        for k, v in out_headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(full_length))
        self.end_headers()
        if stall:
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            time.sleep(3600)
            return
        if cut:
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(2)
            return
        self.wfile.write(body)


serve(Handler)
