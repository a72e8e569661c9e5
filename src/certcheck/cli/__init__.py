"""The `certcheck` command line: parsing (parser/), the work (commands.py), the entry (main.py).

`certcheck.cli:main` is the console script; `certcheck.cli.certcheck` the Click group.
"""

from certcheck.cli.main import main
from certcheck.cli.parser import certcheck

__all__ = ["certcheck", "main"]
