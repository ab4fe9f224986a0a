"""`python -m services.sm`: run the sm service process."""

from cgrpy.runtime.server import run_service
from services.sm.server import SmServer

if __name__ == "__main__":
    run_service(SmServer)
