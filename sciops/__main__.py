from sciops.cli import _entry

_entry()
