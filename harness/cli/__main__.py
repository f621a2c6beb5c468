"""`python -m harness.cli`: the same as `srt-scale`."""

from harness.cli import entry

entry()
