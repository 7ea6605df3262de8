"""``python -m nazbench.smsc``: run the mock SMSC."""

import sys

from nazbench.smsc.cli import main

if __name__ == "__main__":
    sys.exit(main())
