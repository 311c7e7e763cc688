"""``python -m mcpfence`` runs the command line, as the ``mcpfence`` script does."""

from mcpfence.cli import main

raise SystemExit(main())
