"""`python -m infra.local.standin`: see infra/local/standin/__init__.py."""

import sys

from infra.local.standin.server import main

sys.exit(main())
