"""Drop-in compatibility with the systems authcore's users come from.

:mod:`authcore.compat.pyispyb` adapts py-ispyb authentication plugins and checks tokens a
py-ispyb service minted; :mod:`authcore.compat.ispyb_db` reads and writes ISPyB's Person and
permission tables through SQLAlchemy (the ``authcore[ispyb]`` extra). Nothing is re-exported
here: importing this package imports neither submodule.
"""
