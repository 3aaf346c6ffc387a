#!/usr/bin/env python3
"""A Docker token service (the registry's `auth: token` mode) for tests: GET /token with HTTP
basic credentials USER:PASSWORD returns an ES256 JWT (x5c header) granting pull on the asked
repository scope; wrong or missing credentials get 401. Prints its port.

usage: token_server.py KEY.pem CERT.pem ISSUER SERVICE USER PASSWORD
"""
import base64, http.server, json, sys, time, urllib.parse
from fixture_server import serve
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

key_path, cert_path, ISSUER, SERVICE, USER, PASSWORD = sys.argv[1:7]
KEY = serialization.load_pem_private_key(open(key_path, "rb").read(), None)
CERT = x509.load_pem_x509_certificate(open(cert_path, "rb").read())
X5C = base64.b64encode(CERT.public_bytes(serialization.Encoding.DER)).decode()
issued = []


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def token(scope):
    access = []
    if scope:
        kind, name, actions = scope.split(":", 2)
        access.append({"type": kind, "name": name, "actions": [a for a in actions.split(",") if a in ("pull",)]})
    now = int(time.time())
    header = {"typ": "JWT", "alg": "ES256", "x5c": [X5C]}
    claims = {"iss": ISSUER, "sub": USER, "aud": SERVICE, "exp": now + 300, "nbf": now - 10, "iat": now,
              "jti": str(now) + str(len(issued)), "access": access}
    signing_input = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
    der = KEY.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    return signing_input + "." + b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        url = urllib.parse.urlparse(self.path)
        query = urllib.parse.parse_qs(url.query)
        expected = "Basic " + base64.b64encode(("%s:%s" % (USER, PASSWORD)).encode()).decode()
        if url.path != "/token" or self.headers.get("Authorization") != expected or query.get("service") != [SERVICE]:
            self.send_response(401)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = json.dumps({"token": token(query.get("scope", [""])[0]), "expires_in": 300}).encode()
        issued.append(1)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


serve(Handler)
