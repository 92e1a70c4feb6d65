from __future__ import annotations

from typing import TYPE_CHECKING, cast

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from dashboard.selectors import home_page_for_user
from patients.forms import SearchForm

if TYPE_CHECKING:
    from accounts.models import User


@login_required
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """The role-aware home page: what this user's roles do first."""
    home_page = home_page_for_user(user=cast("User", request.user))
    context = {"home": home_page, "form": SearchForm() if home_page.show_search else None}
    return render(request, "dashboard/home.html", context)
