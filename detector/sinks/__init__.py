"""Where findings, alerts and responses go."""
