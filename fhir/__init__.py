"""The FHIR R4 read API app.

This app's package name is also the top-level package of the `fhir.resources` library (the
library's `fhir/__init__.py` is empty). A project directory on sys.path shadows the library, so
the package path is extended to include the library's `fhir/` folder: `fhir.resources` then
imports as usual, whichever comes first on sys.path.
"""

from pkgutil import extend_path

__path__ = extend_path(__path__, __name__)
