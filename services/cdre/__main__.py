"""`python -m services.cdre`: run the cdre service process."""

from cgrpy.runtime.server import run_service
from services.cdre.server import CdreServer

if __name__ == "__main__":
    run_service(CdreServer)
