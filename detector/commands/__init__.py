"""CLI subcommands that have grown their own module; `detector.cli` registers them."""
