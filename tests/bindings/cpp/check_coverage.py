#!/usr/bin/python3
"""check_coverage.py HEADER HPP — every public function of the C header is called in the
C++ wrapper (docs/bindings.md, "C++"): the names declared with MSC_API in HEADER must
each appear as a call `name(` in HPP outside comments. Prints the missing ones and exits
1 if there is one."""
import re
import sys


def main(header, hpp):
    with open(header, encoding="utf-8") as f:
        text = re.sub(r"/\*.*?\*/", " ", f.read(), flags=re.S)
    declared = re.findall(r"\bMSC_API\b[^;(]*?\b(msc_\w+)\s*\(", text)
    if not declared:
        print("check_coverage: no MSC_API function found in %s" % header)
        return 1
    with open(hpp, encoding="utf-8") as f:
        code = "\n".join(l.split("//")[0] for l in f.read().splitlines())
    called = set(re.findall(r"\b(msc_\w+)\s*\(", code))
    missing = [n for n in declared if n not in called]
    if missing:
        print("check_coverage: %d function(s) of %s are not called in %s:\n  %s"
              % (len(missing), header, hpp, "\n  ".join(missing)))
        return 1
    print("check_coverage: all %d functions of %s are called in %s"
          % (len(declared), header, hpp))
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print(__doc__.split("\n")[0], file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1], sys.argv[2]))
