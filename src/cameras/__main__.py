"""``python -m cameras`` (and ``torchrun … -m cameras``): the ``cameras`` command."""

import sys

from .cli.main import main

sys.exit(main())
