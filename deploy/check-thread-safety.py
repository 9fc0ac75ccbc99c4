#!/usr/bin/env python3
"""Clang's -Wthread-safety over every source that uses Abseil's lock annotations.

The Release build compiles with GCC, which ignores ABSL_GUARDED_BY & co; this check re-parses
those translation units with clang (-fsyntax-only, so it is quick) using the build's
compile_commands.json and fails on any thread-safety warning (STYLE.md §10).
Usage: check-thread-safety.py BUILD_DIR
"""
import json
import os
import shlex
import subprocess
import sys


def main() -> int:
    build = sys.argv[1] if len(sys.argv) > 1 else "build"
    with open(os.path.join(build, "compile_commands.json")) as f:
        commands = json.load(f)
    checked, failed = 0, 0
    for entry in commands:
        path = entry["file"]
        if not path.endswith(".cc") or "/tests/" in path:
            continue
        with open(path, errors="replace") as src:
            text = src.read()
        header = os.path.splitext(path)[0] + ".h"
        if os.path.exists(header):
            with open(header, errors="replace") as h:
                text += h.read()
        if not any(k in text for k in ("ABSL_GUARDED_BY", "ABSL_EXCLUSIVE_LOCKS_REQUIRED", "Mutex")):
            continue
        args, skip = [], False
        for a in shlex.split(entry["command"]):
            if skip:
                skip = False
                continue
            if a == "-o":
                skip = True
                continue
            if a == "-c":
                continue
            args.append(a)
        args[0] = "clang++"
        args += ["-fsyntax-only", "-Wthread-safety", "-Werror=thread-safety",
                 "-Wno-unknown-warning-option"]
        r = subprocess.run(args, cwd=entry["directory"], capture_output=True, text=True)
        checked += 1
        if r.returncode != 0:
            failed += 1
            print(f"FAIL {path}\n{r.stderr}")
        elif os.environ.get("VERBOSE"):
            print(f"ok   {path}")
    print(f"thread-safety: {checked - failed} passed, {failed} failed")
    return 1 if failed or checked == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
