"""Settings, logging, Temporal and database plumbing, and the launchers for local services."""
