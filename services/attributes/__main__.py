"""`python -m services.attributes`: run the attributes service process."""

from cgrpy.runtime.server import run_service
from services.attributes.server import AttributesServer

if __name__ == "__main__":
    run_service(AttributesServer)
