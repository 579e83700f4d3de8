"""The built-in images.

Servers here are not virtual machines but network namespaces run by the
compute agent, so there is nothing to upload: the image catalogue is fixed.
``cirros`` is the one image (the name every OpenStack guide boots); its id is
derived from its name, so every server process and every installation shows
the same one.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

_NS = uuid.UUID("9b1c5c3e-0f5e-4a52-9d0c-696d61676573")
CREATED = "2024-01-01T00:00:00Z"


@dataclass(frozen=True)
class Image:
    name: str
    kind: str = "namespace"
    min_disk: int = 0
    min_ram: int = 0
    properties: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return str(uuid.uuid5(_NS, f"image/{self.name}"))

    def view(self) -> dict[str, Any]:
        """Glance v2's image dict (custom properties are top-level keys, as in Glance)."""
        return {
            "id": self.id,
            "name": self.name,
            "status": "active",
            "visibility": "public",
            "protected": True,
            "os_hidden": False,
            "owner": None,
            "container_format": "bare",
            "disk_format": "raw",
            "min_disk": self.min_disk,
            "min_ram": self.min_ram,
            "size": 0,
            "virtual_size": None,
            "checksum": None,
            "os_hash_algo": None,
            "os_hash_value": None,
            "tags": [],
            "created_at": CREATED,
            "updated_at": CREATED,
            "self": f"/v2/images/{self.id}",
            "file": f"/v2/images/{self.id}/file",
            "schema": "/v2/schemas/image",
            "neutrino_image_type": self.kind,
            **self.properties,
        }


IMAGES: tuple[Image, ...] = (
    Image("cirros", properties={"os_distro": "cirros", "description": "A network namespace with a shell"}),
)
BY_ID = {i.id: i for i in IMAGES}


def find(ref: str) -> Image | None:
    """An image by id (or by a ``.../images/<id>`` link, as Nova accepts)."""
    ref = ref.rstrip("/").rsplit("/", 1)[-1]
    return BY_ID.get(ref)
