"""Response documents of ``GET /v2/{p}/cloudbackups/{id}/changed_blocks`` (OpenAPI only).

The handler renders plain dicts; these models exist so ``/openapi.json``
describes the answer and the error bodies (ext-error, vbs-api §2.4).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "ChangedBlockModel",
    "ChangedBlocksModel",
    "ExtErrorBodyModel",
    "ExtErrorModel",
    "changed_blocks_responses",
]


class ChangedBlockModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    offset: int = Field(ge=0, description="Byte offset of the changed range.")
    length: int = Field(ge=1, description="Length of the range in bytes.")


class ChangedBlocksModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    changed_blocks: list[ChangedBlockModel]
    block_size: int = Field(description="Granularity of the ranges (the chunk size).")
    volume_size: int = Field(description="Size in bytes of the backup's volume.")
    next_marker: int | None = Field(
        description="Pass as marker for the next page; null after the last range."
    )


class ExtErrorBodyModel(BaseModel):
    code: str
    message: str


class ExtErrorModel(BaseModel):
    error: ExtErrorBodyModel


def changed_blocks_responses() -> dict[int | str, dict[str, Any]]:
    """The documented error answers of the changed-blocks path."""
    return {
        400: {"model": ExtErrorModel, "description": "Bad query (VolumeBackup.0301), backups "
              "of different volumes (VolumeBackup.0302) or not available (VolumeBackup.0089)."},
        401: {"model": ExtErrorModel, "description": "Missing or invalid token."},
        403: {"model": ExtErrorModel, "description": "The token's project is not the path's."},
        404: {"model": ExtErrorModel, "description": "No such backup visible to the project "
              "(VolumeBackup.0110)."},
    }
