"""A local fake of the DigitalOcean v2 API endpoints nazbench's playbooks use.

It exists to test the DigitalOcean provider without the real service: the
``community.digitalocean`` modules and inventory plugin take a base URL, and this
serves, in memory, what they call (read from their source, collection 1.27.0):

- ``GET /v2/account`` (every module checks the token with it first)
- ``GET /v2/regions``, ``GET /v2/sizes`` (the provision preflight)
- ``GET/POST /v2/account/keys``, ``GET/PUT/DELETE /v2/account/keys/{id|fingerprint}``
- ``GET/POST /v2/droplets`` (``page``/``per_page``/``tag_name``), ``GET/DELETE
  /v2/droplets/{id}``, ``POST /v2/droplets/{id}/actions``,
  ``GET /v2/droplets/{id}/actions/{action_id}``
- ``GET/POST /v2/firewalls``, ``GET/PUT/DELETE /v2/firewalls/{id}``
- ``GET/POST /v2/tags``, ``GET/DELETE /v2/tags/{name}``

Responses follow the shapes in DigitalOcean's API reference (objects wrapped in their
key, lists with ``links``/``meta`` pagination, ``{"id", "message"}`` errors: 401 for a
bad token, 404, 422 for an invalid region, size, image or rule). Every request is
recorded so tests can assert what was (not) sent. State can be kept in a JSON file so
separate processes see the same account.

    python -m nazbench.fakedo --port 8089 --token T [--state state.json] [--ip 127.0.0.1]
"""

from nazbench.fakedo.server import FakeDigitalOcean, serve

__all__ = ["FakeDigitalOcean", "serve"]
