"""The change feed: revision-ordered log, snapshot + long-poll API, agent-side follower.

Modules: ``resources`` (type names, shared), ``log`` (database side),
``signal`` (commit wake-ups), ``publisher`` (the process's ``Feed``: snapshot
sources, commit listener; built once by ``neutrino.server``), ``api``
(``/neutrino/v1/`` HTTP handlers, given a ``Feed`` and the agents' report
service), ``state`` (pure apply logic), ``client`` (httpx client, ``DesiredState``).
Server modules must not be imported by ``resources``, ``state``, ``client``;
no feed module imports a service.
"""

__all__: list[str] = []
