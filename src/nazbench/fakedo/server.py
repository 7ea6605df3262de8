"""The fake DigitalOcean v2 API: account state, request log and an HTTP front end."""

from __future__ import annotations

import argparse
import base64
import copy
import hashlib
import ipaddress
import json
import re
import threading
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

DEFAULT_PER_PAGE = 20  # the API's default page size
MAX_PER_PAGE = 200
TAG_RE = re.compile(r"^[A-Za-z0-9_:\-]{1,255}$")
HOSTNAME_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.\-]{0,253}[A-Za-z0-9])?$")
PORTS_RE = re.compile(r"^(all|0|[0-9]{1,5}(-[0-9]{1,5})?)$")

# A small, realistic catalogue (slugs, memory and prices as published for these sizes).
REGIONS: list[dict[str, Any]] = [
    {"slug": "ams3", "name": "Amsterdam 3", "available": True},
    {"slug": "fra1", "name": "Frankfurt 1", "available": True},
    {"slug": "nyc1", "name": "New York 1", "available": True},
    {"slug": "sfo2", "name": "San Francisco 2", "available": False},
    {"slug": "sfo3", "name": "San Francisco 3", "available": True},
]
SIZES: list[dict[str, Any]] = [
    {
        "slug": "s-1vcpu-512mb-10gb",
        "memory": 512,
        "vcpus": 1,
        "disk": 10,
        "transfer": 0.5,
        "price_monthly": 4.0,
        "price_hourly": 0.00595,
    },
    {
        "slug": "s-1vcpu-1gb",
        "memory": 1024,
        "vcpus": 1,
        "disk": 25,
        "transfer": 1.0,
        "price_monthly": 6.0,
        "price_hourly": 0.00893,
    },
    {
        "slug": "s-1vcpu-2gb",
        "memory": 2048,
        "vcpus": 1,
        "disk": 50,
        "transfer": 2.0,
        "price_monthly": 12.0,
        "price_hourly": 0.01786,
    },
    {
        "slug": "s-2vcpu-2gb",
        "memory": 2048,
        "vcpus": 2,
        "disk": 60,
        "transfer": 3.0,
        "price_monthly": 18.0,
        "price_hourly": 0.02679,
    },
    {
        "slug": "s-2vcpu-4gb",
        "memory": 4096,
        "vcpus": 2,
        "disk": 80,
        "transfer": 4.0,
        "price_monthly": 24.0,
        "price_hourly": 0.03571,
    },
]
IMAGES = {"debian-12-x64": {"id": 148986780, "name": "12 x64", "distribution": "Debian"}}
FEATURES = ["metadata", "install_agent", "server_id"]


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class ApiError(Exception):
    """An error response: HTTP status, DigitalOcean's error id and message."""

    def __init__(self, status: int, err_id: str, message: str) -> None:
        super().__init__(message)
        self.status, self.err_id, self.message = status, err_id, message


def not_found() -> ApiError:
    return ApiError(404, "not_found", "The resource you were accessing could not be found.")


def unprocessable(message: str) -> ApiError:
    return ApiError(422, "unprocessable_entity", message)


def md5_fingerprint(public_key: str) -> str:
    """The colon-separated MD5 fingerprint DigitalOcean gives an SSH public key."""
    try:
        blob = base64.b64decode(public_key.split()[1], validate=True)
    except (IndexError, ValueError):
        raise unprocessable("Key invalid, key should be of the form 'type key [comment]'") from None
    digest = hashlib.md5(blob, usedforsecurity=False).hexdigest()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


class FakeDigitalOcean:
    """One fake account: its droplets, firewalls, keys and tags, and a log of requests."""

    def __init__(
        self,
        tokens: list[str] | tuple[str, ...] = ("fake-token",),
        state_file: Path | None = None,
        droplet_ip: str = "127.0.0.1",
    ) -> None:
        self.tokens = set(tokens)
        self.state_file = state_file
        self.droplet_ip = droplet_ip
        self.lock = threading.RLock()
        self.requests: list[dict[str, Any]] = []
        self.state: dict[str, Any] = {
            "next_id": 500000001,
            "droplets": [],
            "firewalls": [],
            "keys": [],
            "tags": [],
            "actions": [],
        }
        if state_file is not None and state_file.exists():
            self.state = json.loads(state_file.read_text())

    # -- bookkeeping ---------------------------------------------------------------
    def _save(self) -> None:
        if self.state_file is not None:
            tmp = self.state_file.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.state, indent=1))
            tmp.replace(self.state_file)

    def _new_id(self) -> int:
        self.state["next_id"] += 1
        return self.state["next_id"]

    def mutating_requests(self) -> list[dict[str, Any]]:
        """Requests that would change the account (POST, PUT, DELETE)."""
        with self.lock:
            return [r for r in self.requests if r["method"] in ("POST", "PUT", "DELETE")]

    def clear_log(self) -> None:
        with self.lock:
            self.requests.clear()

    # -- seeding (tests put foreign resources in the account this way) -------------------
    def seed_droplet(self, name: str, region: str = "nyc1", tags: list[str] | None = None) -> dict:
        with self.lock:
            body = {"name": name, "region": region, "size": "s-1vcpu-1gb", "image": "debian-12-x64"}
            droplet = self._create_droplet({**body, "tags": tags or []})
            droplet["status"] = "active"
            self._save()
            return droplet

    def seed_firewall(self, name: str, tags: list[str] | None = None) -> dict:
        with self.lock:
            rules = [{"protocol": "tcp", "ports": "22", "sources": {"addresses": ["0.0.0.0/0"]}}]
            for tag in tags or []:
                self._ensure_tag(tag)
            firewall = self._create_firewall(
                {"name": name, "inbound_rules": rules, "outbound_rules": [], "tags": tags or []}
            )
            self._save()
            return firewall

    def seed_key(self, name: str, public_key: str) -> dict:
        with self.lock:
            key = self._create_key({"name": name, "public_key": public_key})
            self._save()
            return key

    # -- request entry point -----------------------------------------------------------
    def handle(
        self, method: str, raw_path: str, headers: dict[str, str], body: bytes, base: str
    ) -> tuple[int, dict | None]:
        split = urlsplit(raw_path)
        path = unquote(split.path).rstrip("/")
        query = {k: v[-1] for k, v in parse_qs(split.query).items()}
        try:
            payload = json.loads(body) if body and body.strip() not in (b"", b"null") else None
        except ValueError:
            payload = None
        auth = headers.get("authorization", "")
        token_ok = auth.startswith("Bearer ") and auth[len("Bearer ") :] in self.tokens
        with self.lock:
            self.requests.append(
                {"method": method, "path": path, "query": query, "body": payload, "auth": token_ok}
            )
            if not token_ok:
                return 401, {"id": "Unauthorized", "message": "Unable to authenticate you"}
            if not path.startswith("/v2/"):
                return 404, {
                    "id": "not_found",
                    "message": "The resource you were accessing could not be found.",
                }
            try:
                status, result = self._route(method, path[len("/v2/") :], query, payload, base)
            except ApiError as err:
                return err.status, {"id": err.err_id, "message": err.message}
            if method != "GET":
                self._save()
            return status, result

    def _route(  # noqa: PLR0911 (a dispatch table)
        self, method: str, path: str, query: dict, body: Any, base: str
    ) -> tuple[int, Any]:
        parts = path.split("/")
        body = body if isinstance(body, dict) else {}
        route = (method, parts[0], len(parts))
        if route == ("GET", "account", 1):
            return 200, {"account": self._account()}
        if parts[0] == "account" and len(parts) >= 2 and parts[1] == "keys":
            return self._keys(method, parts[2:], query, body, base)
        if route == ("GET", "regions", 1):
            return 200, self._page("regions", self._regions(), query, base, path)
        if route == ("GET", "sizes", 1):
            return 200, self._page("sizes", self._sizes(), query, base, path)
        if parts[0] == "droplets":
            return self._droplets(method, parts[1:], query, body, base)
        if parts[0] == "firewalls":
            return self._firewalls(method, parts[1:], query, body, base)
        if parts[0] == "tags":
            return self._tags(method, parts[1:], query, body, base)
        raise not_found()

    # -- shapes --------------------------------------------------------------------
    @staticmethod
    def _account() -> dict:
        return {
            "droplet_limit": 25,
            "floating_ip_limit": 5,
            "volume_limit": 100,
            "email": "bench@example.com",
            "uuid": "b6fr89dbf6d9156cace5f3c78dc9851d957381ef",
            "email_verified": True,
            "status": "active",
            "status_message": "",
            "team": {"uuid": "5df3e3004a17e242b7c20ca6c9fc25b701a47ece", "name": "nazbench"},
        }

    @staticmethod
    def _regions() -> list[dict]:
        slugs = [s["slug"] for s in SIZES]
        return [
            {
                **r,
                "sizes": slugs if r["available"] else [],
                "features": ["metadata", "install_agent"],
            }
            for r in REGIONS
        ]

    @staticmethod
    def _sizes() -> list[dict]:
        available = [r["slug"] for r in REGIONS if r["available"]]
        return [
            {**s, "regions": available, "available": True, "description": "Basic"} for s in SIZES
        ]

    @staticmethod
    def _page(key: str, items: list, query: dict, base: str, path: str) -> dict:
        try:
            per_page = min(max(int(query.get("per_page", DEFAULT_PER_PAGE)), 1), MAX_PER_PAGE)
            page = max(int(query.get("page", 1)), 1)
        except ValueError:
            raise unprocessable("page and per_page must be positive integers") from None
        last = max((len(items) + per_page - 1) // per_page, 1)
        extra = "".join(
            f"&{k}={quote(str(v))}" for k, v in query.items() if k not in ("page", "per_page")
        )

        def url(n: int) -> str:
            return f"{base}/v2/{path}?page={n}&per_page={per_page}{extra}"

        pages: dict[str, str] = {}
        if page > 1:
            pages.update(first=url(1), prev=url(page - 1))
        if page < last:
            pages.update(next=url(page + 1), last=url(last))
        chunk = items[(page - 1) * per_page : page * per_page]
        return {
            key: copy.deepcopy(chunk),
            "links": {"pages": pages} if pages else {},
            "meta": {"total": len(items)},
        }

    # -- SSH keys --------------------------------------------------------------------
    def _find_key(self, ref: str) -> dict:
        for key in self.state["keys"]:
            if str(key["id"]) == ref or key["fingerprint"] == ref:
                return key
        raise not_found()

    def _create_key(self, body: dict) -> dict:
        name, public_key = body.get("name"), body.get("public_key")
        if not name or not isinstance(public_key, str):
            raise unprocessable("Name is required; Public key is required")
        fingerprint = md5_fingerprint(public_key)
        if any(k["fingerprint"] == fingerprint for k in self.state["keys"]):
            raise unprocessable("SSH Key is already in use on your account")
        key = {
            "id": self._new_id(),
            "fingerprint": fingerprint,
            "public_key": public_key,
            "name": name,
        }
        self.state["keys"].append(key)
        return key

    def _keys(self, method: str, rest: list[str], query: dict, body: dict, base: str):
        if not rest:
            if method == "GET":
                return 200, self._page("ssh_keys", self.state["keys"], query, base, "account/keys")
            if method == "POST":
                return 201, {"ssh_key": self._create_key(body)}
        elif len(rest) == 1:
            key = self._find_key(rest[0])
            if method == "GET":
                return 200, {"ssh_key": key}
            if method == "PUT":
                if body.get("name"):
                    key["name"] = body["name"]
                return 200, {"ssh_key": key}
            if method == "DELETE":
                self.state["keys"].remove(key)
                return 204, None
        raise not_found()

    # -- tags --------------------------------------------------------------------------
    def _tag_view(self, name: str) -> dict:
        droplets = [d for d in self.state["droplets"] if name in d["tags"]]
        firewalls = [f for f in self.state["firewalls"] if name in f["tags"]]
        last = f"/v2/droplets/{droplets[-1]['id']}" if droplets else ""
        return {
            "name": name,
            "resources": {
                "count": len(droplets) + len(firewalls),
                "last_tagged_uri": last,
                "droplets": {"count": len(droplets), "last_tagged_uri": last},
                "images": {"count": 0},
                "volumes": {"count": 0},
                "volume_snapshots": {"count": 0},
                "databases": {"count": 0},
            },
        }

    def _ensure_tag(self, name: str) -> None:
        if not isinstance(name, str) or not TAG_RE.match(name):
            raise unprocessable(
                f"tag name {name!r} is invalid: use letters, numbers, colons, dashes, underscores"
            )
        if name not in self.state["tags"]:
            self.state["tags"].append(name)

    def _tags(self, method: str, rest: list[str], query: dict, body: dict, base: str):
        if not rest:
            if method == "GET":
                views = [self._tag_view(t) for t in self.state["tags"]]
                return 200, self._page("tags", views, query, base, "tags")
            if method == "POST":
                name = body.get("name")
                if name in self.state["tags"]:
                    raise unprocessable(f"tag {name} already exists")
                self._ensure_tag(name)
                return 201, {"tag": self._tag_view(name)}
        elif len(rest) == 1:
            name = rest[0]
            if name not in self.state["tags"]:
                raise not_found()
            if method == "GET":
                return 200, {"tag": self._tag_view(name)}
            if method == "DELETE":
                self.state["tags"].remove(name)
                for item in self.state["droplets"] + self.state["firewalls"]:
                    if name in item["tags"]:
                        item["tags"].remove(name)
                return 204, None
        raise not_found()

    # -- droplets ------------------------------------------------------------------
    def _find_droplet(self, ref: str) -> dict:
        for droplet in self.state["droplets"]:
            if str(droplet["id"]) == ref:
                return droplet
        raise not_found()

    def _create_droplet(self, body: dict) -> dict:
        name, region, size, image = (body.get(k) for k in ("name", "region", "size", "image"))
        if not isinstance(name, str) or not HOSTNAME_RE.match(name):
            raise unprocessable(
                "Name Only valid hostname characters are allowed. (a-z, A-Z, 0-9, . and -)"
            )
        regions = {r["slug"]: r for r in REGIONS}
        if region not in regions or not regions[region]["available"]:
            raise unprocessable("You specified an invalid region for Droplet creation.")
        sizes = {s["slug"]: s for s in SIZES}
        if size not in sizes:
            raise unprocessable("You specified an invalid size for Droplet creation.")
        if image not in IMAGES:
            raise unprocessable("You specified an invalid image for Droplet creation.")
        for fingerprint in body.get("ssh_keys") or []:
            self._find_key(str(fingerprint))
        tags = list(dict.fromkeys(body.get("tags") or []))
        for tag in tags:
            self._ensure_tag(tag)
        sz = sizes[size]
        droplet_id = self._new_id()
        droplet = {
            "id": droplet_id,
            "name": name,
            "memory": sz["memory"],
            "vcpus": sz["vcpus"],
            "disk": sz["disk"],
            "locked": False,
            "status": "new",
            "kernel": None,
            "created_at": _now(),
            "features": FEATURES,
            "backup_ids": [],
            "next_backup_window": None,
            "snapshot_ids": [],
            "image": {
                **IMAGES[image],
                "slug": image,
                "public": True,
                "regions": [r["slug"] for r in REGIONS if r["available"]],
                "type": "base",
                "min_disk_size": 10,
                "size_gigabytes": 1.5,
                "status": "available",
            },
            "volume_ids": [],
            "size": {**sz, "regions": [region], "available": True, "description": "Basic"},
            "size_slug": size,
            "networks": {
                "v4": [
                    {
                        "ip_address": f"10.{droplet_id % 250}.0.2",
                        "netmask": "255.255.240.0",
                        "gateway": "",
                        "type": "private",
                    },
                    {
                        "ip_address": self.droplet_ip,
                        "netmask": "255.255.240.0",
                        "gateway": "192.0.2.1",
                        "type": "public",
                    },
                ],
                "v6": [],
            },
            "region": {**regions[region], "sizes": list(sizes), "features": ["metadata"]},
            "tags": tags,
            "vpc_uuid": str(uuid.uuid5(uuid.NAMESPACE_DNS, f"vpc.{region}")),
        }
        self.state["droplets"].append(droplet)
        return droplet

    def _droplets(self, method: str, rest: list[str], query: dict, body: dict, base: str):
        if not rest:
            if method == "GET":
                items = self.state["droplets"]
                if "tag_name" in query:
                    items = [d for d in items if query["tag_name"] in d["tags"]]
                # A droplet reports "new" until it has been looked at once: enough to
                # exercise a client's wait loop without slowing the tests down.
                page = self._page("droplets", items, query, base, "droplets")
                self._activate(items)
                return 200, page
            if method == "POST":
                droplet = self._create_droplet(body)
                links = {
                    "actions": [
                        {
                            "id": self._new_action(droplet, "create")["id"],
                            "rel": "create",
                            "href": f"{base}/v2/actions/0",
                        }
                    ]
                }
                return 202, {"droplet": copy.deepcopy(droplet), "links": links}
        elif len(rest) == 1:
            droplet = self._find_droplet(rest[0])
            if method == "GET":
                view = copy.deepcopy(droplet)
                self._activate([droplet])
                return 200, {"droplet": view}
            if method == "DELETE":
                self.state["droplets"].remove(droplet)
                for firewall in self.state["firewalls"]:
                    if droplet["id"] in firewall["droplet_ids"]:
                        firewall["droplet_ids"].remove(droplet["id"])
                return 204, None
        elif rest[1:2] == ["actions"]:
            return self._droplet_actions(method, rest, body)
        raise not_found()

    def _droplet_actions(self, method: str, rest: list[str], body: dict):
        droplet = self._find_droplet(rest[0])
        if method == "POST" and len(rest) == 2:
            kind = body.get("type")
            if kind not in ("power_on", "power_off", "shutdown", "reboot", "resize"):
                raise unprocessable(f"action type {kind!r} is not supported by the fake")
            droplet["status"] = "off" if kind in ("power_off", "shutdown") else "active"
            return 201, {"action": self._new_action(droplet, kind)}
        if method == "GET" and len(rest) == 3:
            for action in self.state["actions"]:
                if str(action["id"]) == rest[2] and action["resource_id"] == droplet["id"]:
                    action.update(status="completed", completed_at=_now())
                    return 200, {"action": action}
        raise not_found()

    @staticmethod
    def _activate(droplets: list[dict]) -> None:
        for droplet in droplets:
            if droplet["status"] == "new":
                droplet["status"] = "active"

    def _new_action(self, droplet: dict, kind: str) -> dict:
        action = {
            "id": self._new_id(),
            "status": "in-progress",
            "type": kind,
            "started_at": _now(),
            "completed_at": None,
            "resource_id": droplet["id"],
            "resource_type": "droplet",
            "region_slug": droplet["region"]["slug"],
        }
        self.state["actions"].append(action)
        return action

    # -- firewalls -----------------------------------------------------------------
    @staticmethod
    def _normalise_rule(rule: Any, side: str) -> dict:
        if not isinstance(rule, dict) or rule.get("protocol") not in ("tcp", "udp", "icmp"):
            raise unprocessable("protocol must be one of tcp, udp, icmp")
        ports = str(rule.get("ports", ""))
        if rule["protocol"] == "icmp":
            ports = "0"  # the API: "For ICMP rules this parameter will always return '0'."
        elif not PORTS_RE.match(ports):
            raise unprocessable("you must specify a valid range for ports")
        elif ports == "all":
            ports = "0"  # stored and returned as "0" ("all ports"), as the real API does
        where = rule.get(side)
        if not isinstance(where, dict):
            raise unprocessable(f"{side} must be an object")
        out: dict[str, list] = {}
        for addr in where.get("addresses") or []:
            try:
                ipaddress.ip_network(addr, strict=False)
            except ValueError:
                raise unprocessable(f"{addr} is not a valid IP address or CIDR") from None
            out.setdefault("addresses", []).append(addr)
        for field in ("droplet_ids", "load_balancer_uids", "tags"):
            values = where.get(field) or []
            if field == "droplet_ids":
                values = [int(v) for v in values]
            if values:
                out[field] = list(values)
        if not out:
            raise unprocessable(
                f"a rule needs at least one of {side}' addresses, droplet_ids, tags"
            )
        return {"protocol": rule["protocol"], "ports": ports, side: out}

    def _firewall_fields(self, body: dict) -> dict:
        name = body.get("name")
        if not isinstance(name, str) or not HOSTNAME_RE.match(name):
            raise unprocessable("name must be 1-255 of a-z, A-Z, 0-9, . and -")
        tags = list(dict.fromkeys(body.get("tags") or []))
        inbound = [self._normalise_rule(r, "sources") for r in body.get("inbound_rules") or []]
        outbound = [
            self._normalise_rule(r, "destinations") for r in body.get("outbound_rules") or []
        ]
        for tag in tags + [t for r in inbound for t in r["sources"].get("tags", [])]:
            if tag not in self.state["tags"]:
                raise unprocessable(f"tag {tag} not found")  # stricter than need be: tag first
        droplet_ids = [int(i) for i in body.get("droplet_ids") or []]
        for droplet_id in droplet_ids:
            self._find_droplet(str(droplet_id))
        return {
            "name": name,
            "inbound_rules": inbound,
            "outbound_rules": outbound,
            "droplet_ids": droplet_ids,
            "tags": tags,
        }

    def _create_firewall(self, body: dict) -> dict:
        fields = self._firewall_fields(body)
        firewall = {
            "id": str(uuid.uuid4()),
            "status": "succeeded",
            "created_at": _now(),
            "pending_changes": [],
            **fields,
        }
        self.state["firewalls"].append(firewall)
        return firewall

    def _firewalls(self, method: str, rest: list[str], query: dict, body: dict, base: str):
        if not rest:
            if method == "GET":
                return 200, self._page(
                    "firewalls", self.state["firewalls"], query, base, "firewalls"
                )
            if method == "POST":
                return 202, {"firewall": self._create_firewall(body)}
        elif len(rest) == 1:
            firewall = next((f for f in self.state["firewalls"] if f["id"] == rest[0]), None)
            if firewall is None:
                raise not_found()
            if method == "GET":
                return 200, {"firewall": firewall}
            if method == "PUT":
                firewall.update(self._firewall_fields(body))
                return 200, {"firewall": firewall}
            if method == "DELETE":
                self.state["firewalls"].remove(firewall)
                return 204, None
        raise not_found()


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        host = (
            self.headers.get("Host")
            or f"{self.server.server_address[0]}:{self.server.server_address[1]}"
        )
        status, payload = self.server.fake.handle(
            self.command, self.path, headers, body, f"http://{host}"
        )
        data = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        if data:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("ratelimit-limit", "5000")
        self.end_headers()
        if data:
            self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the fake keeps its own request log."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], fake: FakeDigitalOcean) -> None:
        super().__init__(address, _Handler)
        self.fake = fake


def serve(fake: FakeDigitalOcean, host: str = "127.0.0.1", port: int = 0) -> _Server:
    """Start serving ``fake`` in a daemon thread; ``server.server_address`` has the port."""
    server = _Server((host, port), fake)
    threading.Thread(target=server.serve_forever, name="fakedo", daemon=True).start()
    return server


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m nazbench.fakedo", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8089)
    parser.add_argument("--token", action="append", required=True, help="a token it accepts")
    parser.add_argument(
        "--state", type=Path, help="JSON file that keeps the account across restarts"
    )
    parser.add_argument("--ip", default="127.0.0.1", help="public address given to droplets")
    args = parser.parse_args(argv)
    fake = FakeDigitalOcean(tokens=args.token, state_file=args.state, droplet_ip=args.ip)
    server = _Server((args.host, args.port), fake)
    server.serve_forever()
