from certcheck.cli import main

raise SystemExit(main())
