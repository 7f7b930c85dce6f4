from tizi_llm.launcher import main

raise SystemExit(main())
