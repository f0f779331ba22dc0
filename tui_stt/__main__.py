from tui_stt.cli import main

raise SystemExit(main())
