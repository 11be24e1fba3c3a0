"""Agent tasks: the registry of scoped credentials minted for one agent task, and their policy."""
