"""`python -m scripts.embedded`, which `make run` runs: see scripts.embedded.run."""

import sys

from scripts.embedded.run import main

sys.exit(main())
