"""Test and demo support that needs a real host (root): the multi-host OVS harness."""

__all__: list[str] = []
