"""The command line: ``python -m tinydancer demo | assets | train | calibrate | evaluate``. Nothing imports it."""

from __future__ import annotations
