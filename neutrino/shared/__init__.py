"""Pure facts shared by the server and the agents.

Modules here import only the standard library (and each other): both sides
may import them without crossing a layer (``tests/unit/test_layers.py``).
"""

__all__: list[str] = []
