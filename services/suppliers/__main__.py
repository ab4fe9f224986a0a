"""`python -m services.suppliers`: run the suppliers service process."""

from cgrpy.runtime.server import run_service
from services.suppliers.server import SuppliersServer

if __name__ == "__main__":
    run_service(SuppliersServer)
