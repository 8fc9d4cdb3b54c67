"""``python -m lib_lcm …``: see :mod:`lib_lcm.cli.main`."""

import sys

from lib_lcm.cli.main import main

sys.exit(main())
