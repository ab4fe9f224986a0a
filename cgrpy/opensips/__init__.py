"""OpenSIPS integration that runs outside the services: data written into OpenSIPS's own tables."""
