"""The FHIR R4 read API app (named fhirapi so it never shadows the fhir.resources library)."""
