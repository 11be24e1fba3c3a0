"""`python -m detector` runs the same command line as `trailguard`."""

from detector.cli import main

raise SystemExit(main())
