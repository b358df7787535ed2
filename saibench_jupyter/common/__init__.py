"""What every layer may use and that belongs to none: process lifetime, plug-in registries, typed words.

The bottom of the package: it imports nothing else of ``saibench_jupyter``.

* :func:`die_with_parent`: a child process (pod, warm worker, probe) that dies with its parent;
* :func:`available_plugins`, :func:`load_plugin`: built-in classes plus the entry points of a
  group (executors, backends);
* :func:`literal`, :func:`assignment`, :func:`doc_summary`: ``epochs=3`` and docstring
  summaries, read the same way by the magics, the selectors and the ``saibench`` command.
"""

from ._parent import die_with_parent as die_with_parent
from ._registry import available as available_plugins
from ._registry import load as load_plugin
from ._text import assignment as assignment
from ._text import doc_summary as doc_summary
from ._text import literal as literal

__all__ = ["assignment", "available_plugins", "die_with_parent", "doc_summary", "literal", "load_plugin"]
