"""An executor's own options on a command line: ``--gateway``, ``--token``, ``--kernel``, ``--output-notebooks``.

``%sail run``, ``%sail dashboard`` and ``saibench run`` take the same ones, read the same
way, and pass only those given (``executor_options``): an executor that takes none is
made as before, and one given an option it does not take says which. The gateway's token
is a secret: nothing here prints it, and :func:`hide_secrets` takes it out of any message.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

#: Command-line flag -> the executor's option (``executor_options`` key).
FLAGS = {"gateway": "gateway", "token": "token", "kernel": "kernel", "output_notebooks": "output"}
#: Options whose values are never shown.
SECRETS = ("token",)


def add_executor_options(parser: argparse.ArgumentParser) -> None:
    """Add the papermill executor's options to ``parser`` (``%sail run``, ``%sail dashboard``, ``saibench run``)."""
    group = parser.add_argument_group("with --executor papermill (each pod runs as a notebook, which is kept)")
    group.add_argument("--gateway", metavar="URL",
                       help="a Jupyter Kernel Gateway or Enterprise Gateway whose kernels run the pods "
                            "(default: local kernels)")
    group.add_argument("--token", metavar="TOKEN",
                       help="the gateway's token (default: $SAIBENCH_GATEWAY_TOKEN, which keeps it out of the "
                            "notebook and the shell's history); never printed nor stored")
    group.add_argument("--kernel", metavar="NAME", help="the kernelspec the pods' notebooks run on")
    group.add_argument("--output-notebooks", metavar="LOCATION",
                       help="where the executed notebooks go: a folder, or any location Papermill writes "
                            "(s3://bucket/runs/, gs://..., abs://..., http(s)://... PUT)")


def executor_options(namespace: argparse.Namespace) -> dict[str, str] | None:
    """The options :func:`add_executor_options` read that were given, by the executor's names; None for none."""
    given = {option: getattr(namespace, flag) for flag, option in FLAGS.items()
             if getattr(namespace, flag, None) is not None}
    return given or None


def hide_secrets(text: str, options: Mapping[str, Any] | None) -> str:
    """``text`` with the value of every secret option (the token) replaced by ``***``."""
    for name in SECRETS:
        value = (options or {}).get(name)
        if isinstance(value, str) and value:
            text = text.replace(value, "***")
    return text
