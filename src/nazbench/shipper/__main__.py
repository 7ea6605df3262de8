"""``python -m nazbench.shipper``: run the log shipper."""

import sys

from nazbench.shipper.cli import main

if __name__ == "__main__":
    sys.exit(main())
