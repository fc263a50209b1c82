"""Sphinx configuration for sthisto."""

from importlib.metadata import version as _version

project = "sthisto"
author = "sthisto developers"
copyright = "2026, sthisto developers"
release = _version("sthisto")

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.intersphinx",
    "sphinx.ext.viewcode",
]
autosummary_generate = True
autodoc_member_order = "bysource"
autodoc_typehints = "description"
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False
myst_enable_extensions = ["colon_fence", "dollarmath"]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
exclude_patterns = ["_build", "notebooks/.ipynb_checkpoints"]
nitpicky = False
html_theme = "alabaster"
intersphinx_mapping = {}
suppress_warnings = ["myst.header"]
