"""All StorDB models; importing this package registers every table on ``Base.metadata``."""

from cgrpy.storage.models import (  # noqa: F401
    accounts,
    applied,
    cdrs,
    resources,
    sm,
    stats,
    thresholds,
    tp,
)
from cgrpy.storage.models.base import Base

__all__ = ["Base"]
