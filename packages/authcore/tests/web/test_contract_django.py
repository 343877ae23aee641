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
from django.test import override_settings
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

        before = list(urlpatterns)  # a test may serve a second app while the class's one runs
        urlpatterns[:] = [*auth.urlpatterns, path(f"{settings.prefix.lstrip('/')}/protected", protected)]
        clear_url_caches()
        try:
            with support.run_werkzeug(WSGIHandler()) as url:
                yield url
        finally:
            urlpatterns[:] = before
            clear_url_caches()


def test_a_django_site_signs_in_through_an_authcore_provider(make_manager):
    from django.contrib.auth import authenticate, get_user_model

    call_command("migrate", run_syncdb=True, verbosity=0)
    manager = make_manager(manager_config())
    DjangoAuth(manager, throttle=None)
    with override_settings(AUTHCORE_PROVIDER="local"):  # the site's own usernames are local's logins
        user = authenticate(None, username="alice", password="wonderland", provider="local")
        assert user is not None and user.username == "alice"
        assert get_user_model().objects.filter(username="alice").exists()
        assert authenticate(None, username="alice", password="wrong", provider="local") is None
        assert authenticate(None, username="nobody", password="x", provider="local") is None
        dora = authenticate(None, username="dora", password="read")  # the first password provider: dummy
        assert dora is not None and dora.username == "dora@dummy"  # another instance: qualified


def test_another_instances_login_never_becomes_the_sites_account(make_manager):
    from django.contrib.auth import authenticate, get_user_model

    call_command("migrate", run_syncdb=True, verbosity=0)
    model = get_user_model()
    model.objects.filter(username__in=["admin", "carol"]).delete()
    model.objects.create_superuser("admin", password="site-admin-password")
    model.objects.create_user("carol", password="site-password")
    DjangoAuth(make_manager(manager_config()), throttle=None)
    with override_settings(AUTHCORE_PROVIDER="local"):
        # The dummy provider lets anyone be 'admin' or 'carol': as dummy's logins they are other users.
        assert authenticate(None, username="carol", password="read", provider="dummy").username == "carol@dummy"
        assert authenticate(None, username="admin", password="read", provider="dummy").username == "admin@dummy"
        # The designated instance's 'admin' is the site's username, but a superuser is not signed in this way...
        assert authenticate(None, username="admin", password="adminpw", provider="local") is None
        with override_settings(AUTHCORE_SIGN_IN_STAFF=True):  # ...unless the site says so
            assert authenticate(None, username="admin", password="adminpw", provider="local").username == "admin"
    # Without a designated instance every login is qualified.
    assert authenticate(None, username="alice", password="wonderland", provider="local").username == "alice@local"
    assert model.objects.get(username="admin").is_superuser  # untouched throughout
