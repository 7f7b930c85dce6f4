"""`python -m tizi_service` starts the server (see server.main)."""

from tizi_service.server import main

raise SystemExit(main())
