from ncf.cli import main

raise SystemExit(main())
