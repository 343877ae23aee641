"""auth-ldap: the ``ldap`` provider for authcore (OpenLDAP, Active Directory, any LDAPv3 directory).

Install with ``pip install authcore auth-ldap`` (our wheels; see the README) and configure
``type: ldap`` (or keep a py-ispyb ``auth.yml`` with ``LdapAuthentication``)::

    providers:
      - name: site-ldap
        type: ldap
        config:
          uri: [ldaps://ldap1.example.org, ldaps://ldap2.example.org]
          base_dn: ou=people,dc=example,dc=org
          group_base_dn: ou=groups,dc=example,dc=org
          bind_dn: cn=reader,dc=example,dc=org
          bind_password: ${LDAP_READER_PASSWORD}
"""

from __future__ import annotations

from collections.abc import Callable

from authcore import Provider, hookimpl

from .config import AttributeMap, LdapConfig
from .provider import LdapProvider

__all__ = ["LdapProvider", "LdapConfig", "AttributeMap", "authcore_register_providers"]
__version__ = "0.1.0"


@hookimpl
def authcore_register_providers(register: Callable[[type[Provider]], None]) -> None:
    """Register :class:`LdapProvider` as provider type ``ldap``."""
    register(LdapProvider)
