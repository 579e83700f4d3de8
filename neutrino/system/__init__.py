"""The only package that touches the host: one adapter module per Linux subsystem.

* ``exec``: run one command (argv list, optional netns), errors translated once
* ``errors``: the exception tree (drawn in its docstring)
* ``netns``: named network namespaces
* ``iproute``: links, addresses, routes, sysctls, ethtool offloads
* ``ovsdb``: ovs-vsctl transactions and observation; private OVS instances
* ``oftext``: OpenFlow text, pure (no I/O): canonical match, the ``Flow`` value, dump
  parsing, bundle text; shared by the runner, the OVS agent and ``fakes/``
* ``openflow``: the runner: ovs-ofctl dumps and atomic bundles
* ``process``: daemons tracked by pidfile + uuid
"""

__all__ = ["errors", "exec", "iproute", "netns", "oftext", "openflow", "ovsdb", "process"]
