"""``python -m nazbench.fakedo``: serve the fake DigitalOcean API in the foreground."""

from nazbench.fakedo.server import main

main()
