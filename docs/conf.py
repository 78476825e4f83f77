"""Sphinx configuration: the Jupyter projects' stack (myst-parser for Markdown, pydata-sphinx-theme).

Built by ``make docs`` with warnings as errors and nitpicky references; offline (no intersphinx): the
reference pages are generated from the code's own tables by ``_ext/pyspark_reference.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "_ext"))

from pyspark_kernel import __version__

project = "pyspark-kernel"
author = "pyspark-kernel contributors"
copyright = "pyspark-kernel contributors"
version = release = __version__

extensions = ["myst_parser", "pyspark_reference"]
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build"]
smartquotes = False  # "--replace" stays two hyphens, as the user types it
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

html_theme = "pydata_sphinx_theme"
html_title = f"pyspark-kernel {__version__}"
html_static_path: list[str] = []
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
}
html_sidebars: dict[str, list[str]] = {"**": []}  # one level of pages: the top bar lists them
