import sys

from adamnoise.cli import main

sys.exit(main())
