"""HTML templates to PDF with WeasyPrint (receipts, statements, dispute letters)."""

from __future__ import annotations

from typing import Any

from django.template.loader import render_to_string


class PdfUnavailableError(RuntimeError):
    """WeasyPrint or the system libraries it needs (Pango, HarfBuzz) are missing."""


def render_pdf(template_name: str, context: dict[str, Any]) -> bytes:
    """The PDF bytes of a template, or PdfUnavailableError naming what to install."""
    try:
        from weasyprint import HTML
    except (ImportError, OSError) as exc:
        raise PdfUnavailableError(
            "PDF documents need WeasyPrint and its system libraries: install Pango "
            "(Debian/Ubuntu: apt-get install libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz0b) "
            f"and try again. Cause: {exc}"
        ) from exc
    html = render_to_string(template_name, context)
    pdf = HTML(string=html).write_pdf()
    if not pdf:
        raise PdfUnavailableError("WeasyPrint produced no output.")
    return bytes(pdf)
