"""All StorDB models; importing this package registers every table on ``Base.metadata``."""

from cgrpy.storage.models import accounts, cdrs, stats, thresholds, tp  # noqa: F401
from cgrpy.storage.models.base import Base

__all__ = ["Base"]
