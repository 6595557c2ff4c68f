from synthscape.cli import main

raise SystemExit(main())
