"""HL7 v2 message logs and interface endpoints."""
