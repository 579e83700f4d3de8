"""The Neutron resource schema, apart from HTTP.

What a resource is and who may touch it, with no request or response in sight:

* ``resource``: ``Attr``/``Resource`` (one attribute's converter, default and
  policy rule) and the request-body pipeline (``prepare_create``,
  ``prepare_update``, ``Shaper`` for the ``fields`` a caller may see);
* ``definitions``: the attribute map of every resource (network, subnet, port, ...);
* ``convert``: the attribute converters, with Neutron's error reasons;
* ``policy``: Neutron's default policy rules and ``enforce``;
* ``query``: ``ListQuery`` (filters, sorting, marker/limit pagination) and the
  ``*_links`` of a page, built from a base URL string the caller passes.
* ``types``: the ``TypedDict``s the services take and return (generated from the
  attribute maps by ``gen_types``).

Imported by ``neutrino.services`` and by the HTTP edge (``neutrino.api``); it
imports neither (``tests/unit/test_layers.py``).
"""
