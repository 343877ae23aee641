"""The module's settings, set through Jupyverse's own configuration (``--set auth_authcore.KEY=VALUE``).

::

    jupyverse --set auth_authcore.config_file=/etc/jupyverse/authcore.yml \\
              --set auth_authcore.directory=/var/lib/jupyverse/profiles
"""

from __future__ import annotations

from jupyverse_auth import AuthConfig

__all__ = ["AuthcoreAuthConfig"]


class AuthcoreAuthConfig(AuthConfig):
    """Settings of the ``auth_authcore`` module (Jupyverse's ``Config``: unknown keys are refused).

    Attributes:
        config_file: the authcore YAML file (providers, tokens, sessions, ``web:``). Required.
        directory: where each user's Jupyverse profile (JupyterLab settings, workspace, colour,
            the names they chose) is kept, one JSON file per user; ``None``:
            ``~/.local/share/jupyter/fps_auth_authcore`` (fps-auth keeps its database beside it).
        login_url: the sign-in page. A browser navigation (``GET`` accepting ``text/html``) without
            a session is redirected there; API calls get 401. ``None`` switches the page off
            (log in with ``POST /auth/login`` then). fps-login reads this key as well.
    """

    config_file: str | None = None
    directory: str | None = None
    login_url: str | None = "/login"
