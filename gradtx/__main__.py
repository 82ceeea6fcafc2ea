"""``gradtx`` / ``python -m gradtx``: the demo command (see ``gradtx --help``)."""

import sys

from gradtx.demo._cli import main

if __name__ == "__main__":
    sys.exit(main())
