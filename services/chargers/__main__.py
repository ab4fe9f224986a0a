"""`python -m services.chargers`: run the chargers service process."""

from cgrpy.runtime.server import run_service
from services.chargers.server import ChargersServer

if __name__ == "__main__":
    run_service(ChargersServer)
