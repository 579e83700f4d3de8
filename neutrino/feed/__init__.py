"""The change feed: revision-ordered log, snapshot + long-poll API, agent-side follower.

Modules: ``resources`` (type names, shared), ``log`` (database side),
``signal`` (commit wake-ups), ``api`` (``/neutrino/v1/`` handlers),
``state`` (pure apply logic), ``client`` (httpx client, ``DesiredState``).
Server modules must not be imported by ``resources``, ``state``, ``client``.
"""

__all__: list[str] = []
