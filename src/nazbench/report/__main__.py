import sys

from nazbench.report.cli import main

sys.exit(main())
