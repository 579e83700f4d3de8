"""The only package that touches the host: one adapter module per Linux subsystem.

* ``exec``: run one command (argv list, optional netns), errors translated once
* ``errors``: the exception tree (drawn in its docstring)
* ``netns``: named network namespaces
* ``iproute``: links, addresses, routes, sysctls, ethtool offloads
* ``ovsdb``: ovs-vsctl transactions and observation; private OVS instances
* ``openflow``: the ``Flow`` value, dump parsing, atomic bundles
* ``process``: daemons tracked by pidfile + uuid
"""

__all__ = ["errors", "exec", "iproute", "netns", "openflow", "ovsdb", "process"]
