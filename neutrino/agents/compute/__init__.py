"""Compute agent: instances as network namespaces (``vm-<server id>``) plugged into br-int.

Pure planner (``planner``) and guest DHCP client script (``guest``); the executor (``agent``)
applies a plan to this host."""
