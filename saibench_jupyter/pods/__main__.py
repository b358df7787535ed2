"""``python -m saibench_jupyter.pods run SPEC``: run one BenchPod (SPEC is a file, JSON text, or ``-`` for stdin).

``python -m saibench_jupyter.pods notebook -`` runs one pod as a notebook (Papermill), its request on stdin.

``python -m saibench_jupyter.pods serve [--preload MODULE,...]`` starts a warm worker that
forks one pod per request (after importing those modules too).
"""

import os
import sys


def main(argv: list[str]) -> int:
    """Dispatch the shim's subcommands; return the exit status."""
    if argv[:1] in (["run"], ["serve"], ["notebook"]):
        from ..sail import dry_runs_in_process

        # A pod dies at its own timeout: rebuilding its scenario needs no probe process.
        dry_runs_in_process("a pod is bounded by its own timeout")
    if len(argv) == 2 and argv[0] in ("run", "notebook"):
        from ._lifeline import hold, release

        # Before the spec is read and anything heavy imported: a pod whose controller is gone
        # (or goes) must not run on. Its own copy of the event pipe: the shim moves fd 1.
        keeper = hold(os.dup(1))
        if argv[0] == "run":
            from ._shim import serve_pod

            code = serve_pod(argv[1])
        else:
            from ._notebook_run import serve_notebook

            code = serve_notebook(argv[1])
        release(keeper)
        return code
    if argv[:1] == ["serve"] and (len(argv) == 1 or (len(argv) == 3 and argv[1] == "--preload")):
        from ._worker import serve

        return serve(tuple(m for m in argv[2].split(",") if m) if len(argv) == 3 else ())
    print("usage: python -m saibench_jupyter.pods run SPEC|-   (or: notebook REQUEST|-, serve [--preload MODULE,...])",
          file=sys.stderr)
    return 2


if __name__ == "__main__":
    code = main(sys.argv[1:])
    sys.stdout.flush()
    sys.stderr.flush()
    # The events are written and flushed: skip interpreter shutdown (60–85 ms of module
    # teardown per pod), as a forked warm pod does.
    os._exit(code)
