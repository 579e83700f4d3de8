"""The compute subset: a Nova v2.1-compatible API (servers, key pairs, flavors),
a Glance v2-compatible image list and the scheduler that places servers on
compute agents.  Ports are created through the network services in the same
unit of work as the server; compute agents learn about servers from the
change feed (``server`` resource) and report back through
``/neutrino/v1/servers/{id}/state``.
"""
