"""The HTTP face of the orchestrator: starts and queries order workflows, receives webhooks."""
