"""OpenSIPS-facing side of SM: the `cgrates` module's bi-directional JSON-RPC (TCP 2014) and the
event-datagram + MI variant (UDP 2020). See spec/opensips-protocol.md."""
