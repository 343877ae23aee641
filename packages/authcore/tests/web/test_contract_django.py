"""The HTTP contract (authcore.testing.web_contract) against the Django adapter, over werkzeug;
and the django.contrib.auth backend signing a Django user in through an authcore provider."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import authcore_webtest_support as support
import django
from django.conf import settings as django_settings

# One Django configuration per process: this module is its URL configuration.
if not django_settings.configured:
    django_settings.configure(
        DEBUG=False,
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF=__name__,
        SECRET_KEY="contract-django-" + "d" * 40,
        MIDDLEWARE=["django.middleware.csrf.CsrfViewMiddleware"],  # a site's usual CSRF: our views are exempt
        INSTALLED_APPS=["django.contrib.auth", "django.contrib.contenttypes"],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        AUTHENTICATION_BACKENDS=["authcore.web.django.AuthcoreBackend"],
        USE_TZ=True,
    )
    django.setup()

from conftest import manager_config
from django.core.handlers.wsgi import WSGIHandler
from django.core.management import call_command
from django.http import HttpRequest, JsonResponse
from django.urls import clear_url_caches, path

from authcore import AuthManager
from authcore.testing.web_contract import WebAdapterContract
from authcore.web.django import DjangoAuth
from authcore.web.settings import WebSettings

urlpatterns: list[Any] = []


class TestDjangoContract(WebAdapterContract):
    @contextlib.contextmanager
    def serve(self, manager: AuthManager, settings: WebSettings) -> Iterator[str]:
        auth = DjangoAuth(manager, settings)

        @auth.login_required(["read"])
        def protected(request: HttpRequest) -> JsonResponse:
            return JsonResponse({"login": request.authcore_user.login})  # type: ignore[attr-defined]

        urlpatterns[:] = [*auth.urlpatterns, path(f"{settings.prefix.lstrip('/')}/protected", protected)]
        clear_url_caches()
        with support.run_werkzeug(WSGIHandler()) as url:
            yield url


def test_a_django_site_signs_in_through_an_authcore_provider(make_manager):
    from django.contrib.auth import authenticate, get_user_model

    call_command("migrate", run_syncdb=True, verbosity=0)
    manager = make_manager(manager_config())
    DjangoAuth(manager, throttle=None)
    user = authenticate(None, username="alice", password="wonderland", provider="local")
    assert user is not None and user.username == "alice" and get_user_model().objects.filter(username="alice").exists()
    assert authenticate(None, username="alice", password="wrong", provider="local") is None
    assert authenticate(None, username="nobody", password="x", provider="local") is None
    assert authenticate(None, username="dora", password="read") is not None  # the first password provider: dummy
