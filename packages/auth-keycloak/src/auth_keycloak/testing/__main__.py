"""``python -m auth_keycloak.testing``: run the test server with the standard realm.

Prints one JSON line (``url``, ``realm``, ``issuer``, clients and secrets) and serves
until standard input closes or the process is terminated.
"""

from __future__ import annotations

import argparse
import json
import sys

from . import CLIENT_ID, CLIENT_SECRET, OTHER_CLIENT_ID, OTHER_CLIENT_SECRET, USERS, KeycloakTestServer, standard_realm


def main() -> None:
    """Run the server."""
    parser = argparse.ArgumentParser(prog="python -m auth_keycloak.testing")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--realm", default="test")
    args = parser.parse_args()
    server = KeycloakTestServer(port=args.port).start()
    realm = standard_realm(server, args.realm)
    info = {
        "url": server.url,
        "realm": realm.name,
        "issuer": realm.issuer,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "other_client_id": OTHER_CLIENT_ID,
        "other_client_secret": OTHER_CLIENT_SECRET,
        "users": {login: values[0] for login, values in USERS.items()},
    }
    print(json.dumps(info), flush=True)
    try:
        sys.stdin.read()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    main()
