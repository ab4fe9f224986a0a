"""`python -m services.thresholds`: run the thresholds service process."""

from cgrpy.runtime.server import run_service
from services.thresholds.server import ThresholdsServer

if __name__ == "__main__":
    run_service(ThresholdsServer)
