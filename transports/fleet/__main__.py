"""``python -m transports.fleet worker --nats URL``: the fleet commands on their own."""

import sys

from .cli import main

sys.exit(main())
