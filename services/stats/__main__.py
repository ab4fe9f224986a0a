"""`python -m services.stats`: run the stats service process."""

from cgrpy.runtime.server import run_service
from services.stats.server import StatsServer

if __name__ == "__main__":
    run_service(StatsServer)
