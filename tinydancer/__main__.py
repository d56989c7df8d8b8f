"""``python -m tinydancer``: the command line (:mod:`tinydancer.cli.main`)."""

import sys

from tinydancer.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
