"""``python -m transports.cli``: the same as the ``protocore`` command."""

import sys

from . import main

sys.exit(main())
