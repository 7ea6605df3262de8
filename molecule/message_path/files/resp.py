"""Send Redis commands over a plain socket and print the replies as JSON (verify only).

Reads {"host", "port", "password" (optional), "commands": [[arg, ...], ...]} from stdin,
so the password never appears on a command line. Error replies come back as
{"error": "..."}; a refused or timed-out connection exits 2 with the reason on stderr.
"""

import json
import socket
import sys


def encode(args):
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = str(arg).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


def read_reply(f):
    line = f.readline()
    if not line:
        raise ConnectionError("connection closed")
    kind, rest = line[:1], line[1:-2].decode()
    if kind == b"+":
        return rest
    if kind == b"-":
        return {"error": rest}
    if kind == b":":
        return int(rest)
    if kind == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = f.read(n + 2)[:-2]
        return data.decode()
    if kind == b"*":
        n = int(rest)
        return None if n < 0 else [read_reply(f) for _ in range(n)]
    raise ValueError(f"unexpected reply {line!r}")


def main():
    req = json.load(sys.stdin)
    commands = list(req["commands"])
    if req.get("password"):
        commands.insert(0, ["AUTH", req["password"]])
    try:
        sock = socket.create_connection((req["host"], int(req["port"])), timeout=5)
    except OSError as exc:
        sys.stderr.write(f"connect: {exc}\n")
        return 2
    with sock, sock.makefile("rb") as f:
        sock.sendall(b"".join(encode(c) for c in commands))
        replies = [read_reply(f) for _ in commands]
    if req.get("password"):
        replies[0] = "AUTH-OK" if replies[0] == "OK" else "AUTH-FAILED"
    json.dump(replies, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
