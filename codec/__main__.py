"""Allow `python -m codec ...`."""
import sys

from codec.cli import main

sys.exit(main())
