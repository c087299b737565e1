from stock_assets.cli import main

raise SystemExit(main())
