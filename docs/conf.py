"""Sphinx configuration for sthisto."""

from importlib.metadata import version as _version

project = "sthisto"
author = "sthisto developers"
copyright = "2026, sthisto developers"
release = _version("sthisto")

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.intersphinx",
    "sphinx.ext.viewcode",
]
templates_path = ["_templates"]
autosummary_generate = True
autodoc_member_order = "bysource"
autodoc_typehints = "description"
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False
myst_enable_extensions = ["colon_fence", "dollarmath"]
# myst-nb (which includes myst-parser) renders .md and .ipynb; notebooks are committed
# executed, so Sphinx never runs them.
nb_execution_mode = "off"
exclude_patterns = ["_build", "**/.ipynb_checkpoints"]
nitpicky = False
html_theme = "alabaster"
intersphinx_mapping = {}
suppress_warnings = ["myst.header"]
