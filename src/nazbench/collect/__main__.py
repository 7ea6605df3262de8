import sys

from nazbench.collect.cli import main

sys.exit(main())
