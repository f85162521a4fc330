"""`python -m app.cli`: the same as the `dnn-service` command."""

import sys

from app.cli.main import main

sys.exit(main())
