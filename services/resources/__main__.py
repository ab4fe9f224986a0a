"""`python -m services.resources`: run the resources service process."""

from cgrpy.runtime.server import run_service
from services.resources.server import ResourcesServer

if __name__ == "__main__":
    run_service(ResourcesServer)
