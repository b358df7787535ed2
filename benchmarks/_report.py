"""What every benchmark script shares: the machine line and its own section of README.md."""

from __future__ import annotations

import argparse
import datetime
import os
import platform
from pathlib import Path

README = Path(__file__).with_name("README.md")


def machine_line() -> str:
    """``* Python 3.11.7 (CPython), Linux x86_64, 2 CPUs (2 usable), <cpu model>``."""
    cpu = ""
    try:
        cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                    if line.startswith("model name")), "")
    except OSError:
        pass
    return (f"* Python {platform.python_version()} ({platform.python_implementation()}), "
            f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs"
            + (f" ({len(os.sched_getaffinity(0))} usable)" if hasattr(os, "sched_getaffinity") else "")
            + (f", {cpu}" if cpu else ""))


def write_section(start: str, end: str, section: str, intro: str = "") -> None:
    """Replace the text between ``start`` and ``end`` in README.md (``section`` includes both
    markers); append ``intro`` and the section when the markers are not there yet."""
    text = README.read_text(encoding="utf-8") if README.exists() else "# Benchmarks\n"
    if start in text and end in text and text.index(start) < text.index(end):
        head, rest = text.split(start, 1)
        text = head + section + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + intro + section + "\n"
    README.write_text(text, encoding="utf-8")


def writes_readme(args: argparse.Namespace) -> bool:
    """Whether this run rewrites its README section: not with ``--no-write``, nor ``--quick`` without ``--write``."""
    if args.no_write or (args.quick and not args.write):
        if args.quick and not args.no_write and not args.write:
            print("\n(--quick: README.md not written; add --write to write it)")
        return False
    return True


def publish(args: argparse.Namespace, start: str, end: str, section: str, intro: str) -> None:
    """Print ``section``, and write it into README.md between its markers unless :func:`writes_readme` says no."""
    print("\n" + section)
    if writes_readme(args):
        write_section(start, end, section, intro)
        print(f"\nwrote {README}")


def add_write_flags(parser: argparse.ArgumentParser) -> None:
    """``--no-write`` and ``--write``, which :func:`writes_readme` reads (with ``--quick``)."""
    parser.add_argument("--no-write", action="store_true", help="print only; leave benchmarks/README.md alone")
    parser.add_argument("--write", action="store_true", help="write README.md even with --quick")


def latest(command: str, machine: str | None = None) -> list[str]:
    """The head of a "Latest results" section: the command, the date and the machine (``machine_line()``)."""
    date = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    return ["### Latest results", "", f"* command: `{command}`", f"* date: {date}",
            machine_line() if machine is None else machine]
