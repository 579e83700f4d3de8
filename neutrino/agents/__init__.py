"""Agents: reconcile loops that turn the server's desired state into host state.

One package per agent (``ovs``, ``dhcp``, ``l3``, ``compute``, ``metadata``), each a pure planner
beside a thin executor (``agent.py``).  Shared by all: the loop (``loop``), the entry point and
driver registry (``runner``), credentials (``auth``), the interface driver of agent-owned ports
(``interface``) and per-namespace parallel apply (``parallel``).
"""
