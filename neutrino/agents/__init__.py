"""Agents: reconcile loops that turn the server's desired state into host state."""
