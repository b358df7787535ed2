"""What a dry run that went wrong reports: the error, its line in the module, and the fix.

Shared by the dry run in this process and by the probe process (:mod:`._probe`), which
sees a run that loops in C code, exits or ends its process before it may run here.
"""

from __future__ import annotations

from ._errors import DryRunError, DryRunTimeout, Location, source_filename, traceback_frames, traceback_line
from ._parser import ParsedModule


def timeout_error(module: ParsedModule, time_limit: float, location: Location, *,
                  stuck: bool = False) -> DryRunTimeout:
    """The error of a dry run stopped by its time limit; ``stuck`` when it was inside one long C call."""
    if stuck:
        return DryRunTimeout(
            f"the dry run did not finish within {time_limit:g} s: it was stuck in one long "
            "operation (C code, which no time limit interrupts), and its process was stopped",
            module=module.name, location=location,
            fix="discovery runs loops over data once: a huge computation (sum(range(10**12)), "
            "10**10**8, a giant array) belongs in execution, not in the discovery path "
            "(or raise discover's time_limit; imports don't count)")
    return DryRunTimeout(
        f"the dry run did not finish within {time_limit:g} s", module=module.name, location=location,
        fix="discovery runs loops over data once; a loop that never ends, or a long "
        "computation, belongs in execution (or raise discover's time_limit; imports don't count)",
    )


#: What a module that raised SystemExit, KeyboardInterrupt or a bare BaseException should do instead.
ESCAPE_FIX = ("a module must not end the process: raise an ordinary exception (ValueError, ...) "
              "or call Fail(reason) to decline, instead of sys.exit(), exit(), SystemExit, "
              "KeyboardInterrupt, GeneratorExit or BaseException")


def escape_error(module: ParsedModule, what: str, location: Location) -> DryRunError:
    """The error of a dry run that raised what only ends processes (``what``: ``"SystemExit: 4"``)."""
    return DryRunError(printable(f"{what} raised during the dry run"), module=module.name,
                       location=location, fix=ESCAPE_FIX)


def describe(exc: BaseException) -> str:
    """``"SystemExit: 4"``, or only the type's name when there is no message (``exit()``: ``SystemExit(None)``)."""
    text = str(exc) if exc.args not in ((), (None,)) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def printable(text: str) -> str:
    """``text`` with lone surrogates escaped (``\\ud800``): such text cannot be printed or stored."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def raised_in(exc: BaseException, module: ParsedModule) -> bool:
    """True when the innermost frame of ``exc`` is the module's own code."""
    frames = traceback_frames(exc)
    return bool(frames) and frames[-1][0] == source_filename(module.origin)


def internal_error(exc: BaseException, module: ParsedModule) -> DryRunError:
    """A dry run's error that SAIBench's own code raised."""
    return DryRunError(f"internal error of SAIBench during the dry run: {type(exc).__name__}: {exc}",
                       module=module.name, location=module_site(exc, module),
                       fix="this is a bug in SAIBench, not in your module: please report it with this message")


def module_site(exc: BaseException, module: ParsedModule) -> Location:
    """The deepest line of ``module``'s own code in the traceback of ``exc``."""
    return Location(module.origin, traceback_line(exc, module.origin) or module.line)


def load_error(module: ParsedModule, exc: BaseException) -> DryRunError:
    """The error of loading ``module`` (its parameters' defaults and annotations run) that raised ``exc``."""
    where = module_site(exc, module)
    if not isinstance(exc, Exception):
        return escape_error(module, describe(exc), where)
    return DryRunError(printable(f"{describe(exc)} while loading {module.name} (its defaults and annotations run)"),
                       module=module.name, location=where, fix="write the defaults and annotations with SAIL "
                       "names and literals only")
