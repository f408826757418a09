"""``python -m stepdpo.cli`` (and ``accelerate launch -m stepdpo.cli``)."""

import sys

from stepdpo.cli import main

sys.exit(main())
