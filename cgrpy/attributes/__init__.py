"""AttributeS's engine: profile selection and substitution, pure logic.

Shared because two services run it: AttributeS (services/attributes) for its profiles, and
ChargerS for the inline profiles a charger names in its AttributeIDs (``*constant:*req.X:v``),
which need no AttributeS profile data and so no hop to AttributeS.
"""
