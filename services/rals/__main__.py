"""`python -m services.rals`: run the rals service process."""

from cgrpy.runtime.server import run_service
from services.rals.server import RalsServer

if __name__ == "__main__":
    run_service(RalsServer)
