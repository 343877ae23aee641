"""fps-auth-authcore: a Jupyverse auth plugin backed by authcore.

Install it instead of fps-auth (and fps-login), point it at an authcore YAML file, start Jupyverse::

    pip uninstall fps-auth fps-login fps-noauth
    pip install fps-auth-authcore auth-ldap
    jupyverse --set auth_authcore.config_file=authcore.yml

:class:`~fps_auth_authcore.backend.AuthcoreAuth` implements ``jupyverse_auth.Auth``;
:class:`~fps_auth_authcore.main.AuthcoreModule` is the fps module Jupyverse starts.
"""

from importlib.metadata import version

__version__ = version("fps-auth-authcore")
