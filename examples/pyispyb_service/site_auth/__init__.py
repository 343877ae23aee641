"""The site's own py-ispyb authentication plugins (in py-ispyb, ``pyispyb/app/extensions/auth``)."""
