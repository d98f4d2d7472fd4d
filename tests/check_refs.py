#!/usr/bin/env python3
"""check_refs.py ROOT — every repository file that a source comment, script or document
names (lib/<layer>/<file>.c, docs/<page>.md, tests/...) exists, so that a reader who follows a
reference finds it. A path counts when it starts at a top-level folder of the repository
and is not part of a longer path (an install prefix, a build folder, ${VAR}/...). Prints
each dangling reference as FILE:LINE: PATH; exits 1 if there is one."""
import os
import re
import subprocess
import sys

DIRS = "include|lib|backends|bindings|tests|examples|tools|bench|docs|scripts|cmake|abi"
EXTS = "c|h|cu|cpp|md|py|sh|txt|cmake|abi|map|json|toml|tsv"
REF = re.compile(r"(?<![\w./${}~-])(?:\.\./)?((?:%s)/[\w./-]*\w\.(?:%s))(?![\w.-]*\w)" % (DIRS, EXTS))
# Paths under an install prefix, not in the repository (tests/check_install.sh).
INSTALLED = ("cmake/mosaic/",)
SCAN = re.compile(r"\.(c|h|cu|cpp|py|sh|md|txt|cmake|in)$|(^|/)CMakeLists\.txt$|^\.ci/")


def main():
    os.chdir(sys.argv[1] if len(sys.argv) > 1 else ".")
    files = subprocess.run(["git", "ls-files"], capture_output=True, text=True).stdout.split()
    if not files:  # not a git checkout: every file below
        files = [os.path.relpath(os.path.join(d, f)) for d, _, fs in os.walk(".") for f in fs]
    bad = 0
    for name in sorted(files):
        if not SCAN.search(name) or name.startswith(("tests/data/", "examples/data/", "build")):
            continue
        try:
            lines = open(name, encoding="utf-8").read().split("\n")
        except (UnicodeDecodeError, OSError):
            continue
        for no, line in enumerate(lines, 1):
            for m in REF.finditer(line):
                path = m.group(1)
                if path.startswith(INSTALLED):
                    continue
                here = os.path.join(os.path.dirname(name), path)
                if os.path.exists(path) or os.path.exists(here):
                    continue
                print(f"{name}:{no}: {path} does not exist")
                bad += 1
    if bad == 0:
        print("references: every cited repository file exists")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
