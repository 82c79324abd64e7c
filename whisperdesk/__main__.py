"""Allows ``python -m whisperdesk``."""

import sys

from whisperdesk.cli import main

sys.exit(main())
