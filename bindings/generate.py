#!/usr/bin/python3
"""Generates every language binding of libmosaic from the public header.

    bindings/generate.py                    regenerates every language's files
    bindings/generate.py --lang cpp         only these languages (repeatable)
    bindings/generate.py --check            compares instead of writing (exit 1 on drift)
    bindings/generate.py --output FILE      Python only: writes _ffi.py elsewhere (the
                                            Python drift test uses this)

The header (include/mosaic/mosaic.h) is the single source of truth. It is preprocessed
with the C preprocessor (`cpp`, or $CPP) against pycparser's fake libc headers, or
minimal stubs when those are not installed, and parsed with pycparser; #defines are
read from the header text itself. The parse becomes a language-neutral model
(bindings/api.py: functions, handles, structs, enums, defines), and each language's
back-end (LANGUAGES below: a module bindings/gen_<lang>.py with
render(api, header_rel) -> {path relative to the repository: text}) turns it into
that language's files. Python is the exception, older than the model: this file renders
its ctypes layer, bindings/python/mosaic/_ffi.py, itself: every public function becomes a
ctypes prototype (argtypes/restype), every integer #define a Python constant, every
function-like macro with an integer body a Python function, every enum its constants,
every struct a ctypes.Structure and every opaque handle an incomplete
ctypes.Structure (only pointers to it are used). The output depends only on the
header: the same header always gives the same bytes, so a test can regenerate it and
fail on any difference (docs/bindings.md).

Exit status: 0 on success, 1 on drift (--check) or an unsupported construct in the
header (named on stderr), 77 when pycparser or the preprocessor is missing.
"""

import argparse
import difflib
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DEFAULT_HEADER = os.path.join(ROOT, "include", "mosaic", "mosaic.h")
DEFAULT_OUTPUT = os.path.join(HERE, "python", "mosaic", "_ffi.py")
SKIP = 77

# The back-end module of each language other than Python: bindings/gen_<lang>.py.
LANGUAGES = {
    "cpp": "gen_cpp",
    "go": "gen_go",
    "java": "gen_java",
    "node": "gen_node",
    "rust": "gen_rust",
}

try:
    import pycparser
    from pycparser import c_ast, c_generator
except ImportError:  # pragma: no cover - depends on the machine
    pycparser = None


class Unsupported(Exception):
    """A construct of the header that the generator cannot turn into ctypes."""


# ---------------------------------------------------------------------------------------
# Preprocessing
# ---------------------------------------------------------------------------------------

# Used when pycparser's fake libc headers are not installed. The generator maps the
# fixed-width names themselves, so what they are typedef'd to does not matter.
STUB_HEADERS = {
    "stddef.h": "typedef int size_t; typedef int ptrdiff_t; typedef int wchar_t;\n"
                "#define NULL 0\n",
    "stdint.h": "".join("typedef int %s;\n" % t for t in (
        "int8_t", "uint8_t", "int16_t", "uint16_t", "int32_t", "uint32_t", "int64_t",
        "uint64_t", "intptr_t", "uintptr_t", "intmax_t", "uintmax_t")),
}


def fake_libc_dir():
    """pycparser's fake libc headers: next to the module (pip) or where Debian puts them."""
    candidates = []
    if pycparser is not None:
        base = os.path.dirname(pycparser.__file__)
        candidates += [os.path.join(base, "utils", "fake_libc_include"),
                       os.path.join(os.path.dirname(base), "utils", "fake_libc_include")]
    candidates += ["/usr/share/python3-pycparser/fake_libc_include",
                   "/usr/share/pycparser/fake_libc_include"]
    for c in candidates:
        if os.path.isfile(os.path.join(c, "stdint.h")):
            return c
    return None


def preprocess(header):
    cpp = os.environ.get("CPP", "cpp")
    if shutil.which(cpp) is None:
        raise FileNotFoundError("the C preprocessor (%s) is not installed" % cpp)
    with tempfile.TemporaryDirectory() as tmp:
        inc = fake_libc_dir()
        if inc is None:
            inc = tmp
            for name, text in STUB_HEADERS.items():
                with open(os.path.join(tmp, name), "w") as f:
                    f.write(text)
        # -undef: no __GNUC__ or platform macros, so the header shows its portable face;
        # MSC_API then expands to nothing (it carries the visibility attribute only when
        # MSC_BUILDING_LIBRARY is defined). Attributes and extensions are neutralised in
        # case a future header uses them unconditionally.
        cmd = [cpp, "-undef", "-nostdinc", "-I", inc,
               "-D__attribute__(x)=", "-D__extension__=", "-D__restrict=",
               "-D__inline=", "-D__asm__(x)=", "-U__cplusplus",
               "-UMSC_BUILDING_LIBRARY", header]
        res = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             universal_newlines=True)
        if res.returncode != 0:
            raise Unsupported("the preprocessor failed:\n" + res.stderr)
        return res.stdout


# ---------------------------------------------------------------------------------------
# #defines, read from the header text
# ---------------------------------------------------------------------------------------

TOKEN = re.compile(r"\s*(?:(\d+\.\d*(?:[eE][-+]?\d+)?|\d+[eE][-+]?\d+)[fFlL]?"
                   r"|(0[xX][0-9a-fA-F]+|\d+)[uUlL]*|([A-Za-z_]\w*)|(<<|>>|[-+*/%(),|&^~]))")
STRING = re.compile(r'^"((?:[^"\\\n]|\\[\\"nt])*)"$')


def translate_expr(expr, known, params=()):
    """A C constant expression (integers, floating-point numbers, the names in known,
    the parameters) as Python source, or None if it is not one."""
    out = []
    pos = 0
    expr = expr.strip()
    if not expr:
        return None
    is_float = False
    while pos < len(expr):
        m = TOKEN.match(expr, pos)
        if not m:
            return None
        flt, num, ident, op = m.groups()
        if flt is not None:
            out.append(repr(float(flt)))
            is_float = True
        elif num is not None:
            out.append(str(int(num, 0)) if not num.lower().startswith("0x") else num.lower())
        elif ident is not None:
            if ident not in params and ident not in known:
                return None
            out.append(ident)
        else:
            out.append(op)
        pos = m.end()
    if not is_float:
        out = ["//" if t == "/" else t for t in out]
    src = " ".join(out)
    src = src.replace("( ", "(").replace(" )", ")").replace(" ,", ",")
    try:
        compile(src, "<macro>", "eval")
    except SyntaxError:
        return None
    return src


def clean_doc(text):
    text = re.sub(r"^/\*\*?<?", "", text.strip())
    text = re.sub(r"\*/$", "", text)
    lines = [re.sub(r"^\s*\*\s?", "", l).strip() for l in text.splitlines()]
    return " ".join(l for l in lines if l).strip()


# Macros that are not values: the include guard and the export attribute.
NOT_VALUES = ("MOSAIC_MOSAIC_H", "MSC_API")


def parse_defines(text):
    """[(name, params or None, python source, doc)] in header order, and the names of the
    macros that could not be translated (other than NOT_VALUES)."""
    lines = text.replace("\\\n", " ").splitlines()
    result, skipped = [], []
    known = {}   # name -> value or Python function, for evaluating later macros
    pending_doc, in_doc, doc_buf = None, False, []
    for line in lines:
        stripped = line.strip()
        if in_doc:
            doc_buf.append(line)
            if "*/" in line:
                in_doc = False
                pending_doc = clean_doc("\n".join(doc_buf))
            continue
        if stripped.startswith("/**") and not stripped.startswith("/**<"):
            if "*/" in stripped:
                pending_doc = clean_doc(stripped)
            else:
                in_doc, doc_buf = True, [line]
            continue
        m = re.match(r"\s*#\s*define\s+(\w+)(\(([^)]*)\))?(.*)$", line)
        if not m:
            if stripped:
                pending_doc = None
            continue
        name, has_params, params, body = m.group(1), m.group(2), m.group(3), m.group(4)
        doc = pending_doc
        pending_doc = None
        trailing = re.search(r"/\*\*<(.*?)\*/", body)
        if trailing:
            doc = clean_doc(trailing.group(0))
        body = re.sub(r"/\*.*?\*/", " ", body)
        body = re.sub(r"//.*$", "", body).strip()
        if name in NOT_VALUES:
            continue
        if has_params is not None:
            plist = tuple(p.strip() for p in params.split(",") if p.strip())
            src = translate_expr(body, known, plist)
            if src is None or any(not re.match(r"^[A-Za-z_]\w*$", p) for p in plist):
                skipped.append(name)
                continue
            known[name] = eval("lambda %s: %s" % (", ".join(plist), src),
                               {"__builtins__": {}}, dict(known))
            result.append((name, plist, src, doc))
            continue
        sm = STRING.match(body)
        if sm:
            value = sm.group(1).encode().decode("unicode_escape")
            result.append((name, None, repr(value), doc))
            continue
        src = translate_expr(body, known)
        if src is None:
            skipped.append(name)
            continue
        try:
            value = eval(src, {"__builtins__": {}}, dict(known))
        except Exception:
            skipped.append(name)
            continue
        if not isinstance(value, (int, float)):
            skipped.append(name)
            continue
        known[name] = value
        result.append((name, None, repr(value), doc))
    return result, skipped


# ---------------------------------------------------------------------------------------
# Types
# ---------------------------------------------------------------------------------------

BASE_TYPES = {
    "int8_t": "ctypes.c_int8", "uint8_t": "ctypes.c_uint8",
    "int16_t": "ctypes.c_int16", "uint16_t": "ctypes.c_uint16",
    "int32_t": "ctypes.c_int32", "uint32_t": "ctypes.c_uint32",
    "int64_t": "ctypes.c_int64", "uint64_t": "ctypes.c_uint64",
    "intptr_t": "ctypes.c_ssize_t", "uintptr_t": "ctypes.c_size_t",
    "size_t": "ctypes.c_size_t", "ptrdiff_t": "ctypes.c_ssize_t",
    "float": "ctypes.c_float", "double": "ctypes.c_double",
    "char": "ctypes.c_char", "signed char": "ctypes.c_byte",
    "unsigned char": "ctypes.c_ubyte",
    "short": "ctypes.c_short", "unsigned short": "ctypes.c_ushort",
    "int": "ctypes.c_int", "signed int": "ctypes.c_int", "signed": "ctypes.c_int",
    "unsigned": "ctypes.c_uint", "unsigned int": "ctypes.c_uint",
    "long": "ctypes.c_long", "unsigned long": "ctypes.c_ulong",
    "long long": "ctypes.c_longlong", "unsigned long long": "ctypes.c_ulonglong",
    "_Bool": "ctypes.c_bool",
}


class Generator:
    def __init__(self, header):
        self.header = header
        self.header_name = os.path.basename(header)
        self.typedefs = []     # (name, python source) scalar / pointer / callback aliases
        self.structs = []      # (class name, fields or None, doc)
        self.struct_names = {}  # struct tag -> class name
        self.enums = []        # (name, value)
        self.functions = []    # (name, restype, [(argname, argtype)], C prototype)
        self.known_types = set()
        self.cgen = c_generator.CGenerator()

    def mine(self, node):
        return node.coord is not None and os.path.basename(node.coord.file) == self.header_name

    # -- mapping of a pycparser type to ctypes source ------------------------------------
    def base(self, node, what):
        if isinstance(node, c_ast.IdentifierType):
            name = " ".join(n for n in node.names)
            if name in BASE_TYPES:
                return BASE_TYPES[name]
            if name in self.known_types:
                return name
            if name == "void":
                return None
            raise Unsupported("%s: unknown type %s" % (what, name))
        if isinstance(node, c_ast.Struct):
            if node.name in self.struct_names:
                return self.struct_names[node.name]
            raise Unsupported("%s: struct %s is not declared in the header" % (what, node.name))
        if isinstance(node, c_ast.Enum):
            return "ctypes.c_int"
        raise Unsupported("%s: unsupported type %s" % (what, type(node).__name__))

    def ctype(self, node, what, position="param"):
        """position: 'param', 'return', 'field' or 'callback'."""
        if isinstance(node, c_ast.TypeDecl):
            t = self.base(node.type, what)
            if t is None and position != "return":
                raise Unsupported("%s: a void value" % what)
            return t
        if isinstance(node, c_ast.ArrayDecl):
            if position == "field":
                dim = node.dim
                if not isinstance(dim, c_ast.Constant):
                    raise Unsupported("%s: array dimension is not a literal" % what)
                return "(%s * %d)" % (self.ctype(node.type, what, position), int(dim.value, 0))
            return self.ctype(c_ast.PtrDecl([], node.type), what, position)
        if isinstance(node, c_ast.PtrDecl):
            inner = node.type
            if isinstance(inner, c_ast.FuncDecl):
                return self.funcptr(inner, what)
            if isinstance(inner, c_ast.TypeDecl) and isinstance(inner.type, c_ast.IdentifierType):
                name = " ".join(inner.type.names)
                if name == "void":
                    return "ctypes.c_void_p"
                if name == "char":
                    # const char *: a NUL-terminated string in, or a library-owned string
                    # out (bytes). A non-const char * is a caller buffer.
                    if "const" in inner.quals or position in ("return", "callback"):
                        return "ctypes.c_char_p"
                    return "ctypes.POINTER(ctypes.c_char)"
            if isinstance(inner, c_ast.PtrDecl) and isinstance(inner.type, c_ast.TypeDecl) \
                    and isinstance(inner.type.type, c_ast.IdentifierType) \
                    and inner.type.type.names == ["char"]:
                return "ctypes.POINTER(ctypes.c_char_p)"
            return "ctypes.POINTER(%s)" % self.ctype(inner, what, "pointee")
        if isinstance(node, c_ast.FuncDecl):
            raise Unsupported("%s: a function type without a pointer" % what)
        raise Unsupported("%s: unsupported declarator %s" % (what, type(node).__name__))

    def params(self, func, what):
        out = []
        if func.args is None:
            return out
        for i, p in enumerate(func.args.params):
            if isinstance(p, c_ast.EllipsisParam):
                raise Unsupported("%s: varargs cannot be called through ctypes safely" % what)
            if isinstance(p, c_ast.Typename) or p.name is None:
                if isinstance(p.type, c_ast.TypeDecl) and \
                        isinstance(p.type.type, c_ast.IdentifierType) and \
                        p.type.type.names == ["void"]:
                    continue  # (void)
                name = "arg%d" % i
            else:
                name = p.name
            out.append((name, self.ctype(p.type, "%s(%s)" % (what, name))))
        return out

    def funcptr(self, func, what):
        res = self.ctype(func.type, what, "return")
        args = [t for _, t in self.params(func, what)]
        return "ctypes.CFUNCTYPE(%s)" % ", ".join([res or "None"] + args)

    # -- the walk ------------------------------------------------------------------------
    def enum_values(self, enum, what):
        value = -1
        for e in enum.values.enumerators:
            if e.value is not None:
                src = self.cgen.visit(e.value)
                known = {n: v for n, v in self.enums}
                py = translate_expr(src, known)
                if py is None:
                    raise Unsupported("%s: enumerator %s = %s" % (what, e.name, src))
                value = eval(py, {"__builtins__": {}}, known)
            else:
                value += 1
            self.enums.append((e.name, value))

    def struct(self, s, typedef_name, doc_name):
        cls = typedef_name or s.name
        if s.name:
            if s.name in self.struct_names and s.decls is None:
                return self.struct_names[s.name]
            self.struct_names[s.name] = cls
        entry = None
        for i, (n, f, d) in enumerate(self.structs):
            if n == cls:
                entry = i
        if s.decls is None:
            if entry is None:
                self.structs.append((cls, None, doc_name))
            return cls
        fields = []
        for d in s.decls:
            if d.bitsize is not None:
                raise Unsupported("%s.%s: bit fields" % (cls, d.name))
            fields.append((d.name, self.ctype(d.type, "%s.%s" % (cls, d.name), "field")))
        if entry is None:
            self.structs.append((cls, fields, doc_name))
        else:
            self.structs[entry] = (cls, fields, doc_name)
        return cls

    def walk(self, ast):
        for node in ast.ext:
            if not self.mine(node):
                continue
            if isinstance(node, c_ast.Typedef):
                t = node.type
                if isinstance(t, c_ast.TypeDecl) and isinstance(t.type, c_ast.Struct):
                    cls = self.struct(t.type, node.name,
                                      "struct %s" % (t.type.name or node.name))
                    if cls != node.name:
                        self.typedefs.append((node.name, cls))
                    self.known_types.add(node.name)
                    continue
                if isinstance(t, c_ast.TypeDecl) and isinstance(t.type, c_ast.Enum):
                    if t.type.values is not None:
                        self.enum_values(t.type, node.name)
                    self.typedefs.append((node.name, "ctypes.c_int"))
                    self.known_types.add(node.name)
                    continue
                self.typedefs.append((node.name, self.ctype(t, node.name, "field")))
                self.known_types.add(node.name)
            elif isinstance(node, c_ast.Decl):
                t = node.type
                if isinstance(t, c_ast.FuncDecl):
                    if node.name is None or not node.name.startswith("msc_"):
                        continue
                    if "static" in node.storage or "inline" in node.funcspec:
                        raise Unsupported("%s: an inline function has no symbol to bind"
                                          % node.name)
                    res = self.ctype(t.type, node.name, "return")
                    args = self.params(t, node.name)
                    proto = self.cgen.visit(node).strip()
                    proto = re.sub(r"\s+", " ", proto) + ";"
                    self.functions.append((node.name, res, args, proto))
                elif isinstance(t, c_ast.Struct):
                    self.struct(t, None, "struct %s" % t.name)
                elif isinstance(t, c_ast.Enum):
                    if t.values is not None:
                        self.enum_values(t, "enum %s" % t.name)
                elif node.name is not None:
                    raise Unsupported("%s: exported variables are not supported (use a "
                                      "getter function)" % node.name)


# ---------------------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------------------

def wrap_comment(text, prefix="# ", width=88):
    words, lines, cur = text.split(), [], prefix.rstrip()
    for w in words:
        if len(cur) + 1 + len(w) > width and cur.strip() != prefix.strip():
            lines.append(cur)
            cur = prefix.rstrip()
        cur += " " + w
    lines.append(cur)
    return "\n".join(lines)


def render(gen, defines, header_rel):
    version = {n: int(src) for n, p, src, _ in defines
               if p is None and n in ("MSC_VERSION_MAJOR", "MSC_VERSION_MINOR",
                                      "MSC_VERSION_PATCH")}
    for key in ("MSC_VERSION_MAJOR", "MSC_VERSION_MINOR", "MSC_VERSION_PATCH"):
        if key not in version:
            raise Unsupported("the header does not define %s" % key)
    o = []
    w = o.append
    w("# Generated by bindings/generate.py from %s. DO NOT EDIT." % header_rel)
    w("# Regenerate with: /usr/bin/python3 bindings/generate.py")
    w('"""The ctypes layer of libmosaic: constants, types and prototypes from the header.')
    w("")
    w("Every public function of the header is bound here under its C name with argtypes")
    w("and restype; functions the loaded library lacks (an older minor version) are left")
    w("out, so hasattr(_ffi, name) says whether they can be called. Use the Pythonic")
    w("layer (the mosaic package) unless you need the raw C API.")
    w('"""')
    w("")
    w("import ctypes")
    w("")
    w("from ._loader import bind_functions as _bind_functions")
    w("from ._loader import load_library as _load_library")
    w("")
    w("# The version of the header these bindings were generated from.")
    w("HEADER_VERSION_MAJOR = %d" % version["MSC_VERSION_MAJOR"])
    w("HEADER_VERSION_MINOR = %d" % version["MSC_VERSION_MINOR"])
    w("HEADER_VERSION_PATCH = %d" % version["MSC_VERSION_PATCH"])
    w("")
    w("# " + "-" * 86)
    w("# Constants (#define)")
    w("# " + "-" * 86)
    w("")
    for name, params, src, doc in defines:
        if params is None:
            if doc:
                w(wrap_comment(doc, "#: "))
            w("%s = %s" % (name, src))
        else:
            while o[-1] == "":
                o.pop()
            w("")
            w("")
            w("def %s(%s):" % (name, ", ".join(params)))
            w('    """%s"""' % (doc or "The macro %s of the header." % name))
            w("    return %s" % src)
            w("")
            w("")
    if gen.enums:
        w("")
        w("# Enumerators")
        for name, value in gen.enums:
            w("%s = %d" % (name, value))
    w("")
    w("# " + "-" * 86)
    w("# Types")
    w("# " + "-" * 86)
    for cls, fields, doc in gen.structs:
        w("")
        w("")
        w("class %s(ctypes.Structure):" % cls)
        if fields is None:
            w('    """%s: an opaque handle, only used through pointers."""' % doc)
        else:
            w('    """%s."""' % doc)
    w("")
    w("")
    for name, src in gen.typedefs:
        w("%s = %s" % (name, src))
    for cls, fields, doc in gen.structs:
        if fields is None:
            continue
        w("%s._fields_ = [" % cls)
        for fname, ftype in fields:
            w("    (%r, %s)," % (fname, ftype))
        w("]")
    w("")
    w("# " + "-" * 86)
    w("# Functions: (name, restype, argtypes, argument names), in the header's order")
    w("# " + "-" * 86)
    w("")
    w("FUNCTIONS = (")
    for name, res, args, proto in gen.functions:
        w(wrap_comment(proto, "    # "))
        w("    (%r, %s," % (name, res or "None"))
        if args:
            line = "     (%s,)," % ", ".join(t for _, t in args)
            if len(line) <= 88:
                w(line)
            else:
                w("     (")
                for _, t in args:
                    w("         %s," % t)
                w("     ),")
            line = "     (%s,))," % ", ".join(repr(n) for n, _ in args)
            if len(line) <= 88:
                w(line)
            else:
                w("     (")
                for n, _ in args:
                    w("         %r," % n)
                w("     )),")
        else:
            w("     (),")
            w("     ()),")
    w(")")
    w("")
    w("#: The loaded shared library (a ctypes.CDLL), checked against HEADER_VERSION_MAJOR.")
    w("lib = _load_library(HEADER_VERSION_MAJOR, HEADER_VERSION_MINOR, HEADER_VERSION_PATCH)")
    w("#: Functions of the header that the loaded library does not export.")
    w("MISSING = _bind_functions(lib, FUNCTIONS, globals())")
    return "\n".join(o) + "\n"


def header_rel(header):
    rel = os.path.relpath(os.path.abspath(header), ROOT)
    return os.path.basename(header) if rel.startswith("..") else rel


def parse(header):
    """(pycparser AST, parse_defines result, skipped macro names) of the header."""
    if pycparser is None:
        raise ImportError("pycparser is not installed (Debian: python3-pycparser)")
    with open(header, encoding="utf-8") as f:
        text = f.read()
    defines, skipped = parse_defines(text)
    pre = preprocess(header)
    ast = pycparser.CParser().parse(pre, header)
    return ast, defines, skipped


def generate(header):
    """The Python ctypes layer (_ffi.py text) and the macros left out."""
    ast, defines, skipped = parse(header)
    gen = Generator(header)
    gen.walk(ast)
    if not gen.functions:
        raise Unsupported("no msc_ function found in %s" % header)
    return render(gen, defines, header_rel(header)), skipped


def load_api(header=DEFAULT_HEADER):
    """The language-neutral model of the header (bindings/api.py)."""
    sys.path.insert(0, HERE)
    import api as api_model
    ast, defines, _ = parse(header)
    try:
        return api_model.build(header, ast, defines)
    except api_model.Unsupported as e:
        raise Unsupported(str(e))


def outputs(lang, header, python_output):
    """{absolute path: text} that `lang` generates from the header."""
    if lang == "python":
        out, skipped = generate(header)
        if skipped:
            # Not fatal (a macro may be meant for C only), but say so: the tests require
            # a clean run, so a new macro the bindings miss is noticed.
            print("generate.py: warning: macros that are not constant expressions were "
                  "left out of the bindings: %s" % ", ".join(skipped), file=sys.stderr)
        return {python_output: out}
    sys.path.insert(0, HERE)
    module = __import__(LANGUAGES[lang])
    files = module.render(load_api(header), header_rel(header))
    return {os.path.join(ROOT, rel): text for rel, text in files.items()}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--header", default=DEFAULT_HEADER)
    ap.add_argument("--lang", action="append", choices=["python"] + sorted(LANGUAGES),
                    help="a language to generate (repeatable; default: all)")
    ap.add_argument("--output", default=None,
                    help="Python only: where to write _ffi.py")
    ap.add_argument("--check", action="store_true",
                    help="compare with the committed files instead of writing them; exit 1 "
                         "on a difference")
    args = ap.parse_args(argv)
    langs = args.lang or (["python"] if args.output else ["python"] + sorted(LANGUAGES))
    if args.output and langs != ["python"]:
        ap.error("--output is for --lang python only")
    files = {}
    try:
        for lang in langs:
            files.update(outputs(lang, args.header, args.output or DEFAULT_OUTPUT))
    except ImportError as e:
        print("generate.py: skipped: %s" % e, file=sys.stderr)
        return SKIP
    except FileNotFoundError as e:
        print("generate.py: skipped: %s" % e, file=sys.stderr)
        return SKIP
    except (Unsupported, pycparser.plyparser.ParseError) as e:
        print("generate.py: %s: %s" % (args.header, e), file=sys.stderr)
        return 1
    if args.check:
        status = 0
        for path, out in sorted(files.items()):
            try:
                with open(path, encoding="utf-8") as f:
                    old = f.read()
            except OSError as e:
                print("generate.py: %s" % e, file=sys.stderr)
                status = 1
                continue
            if old != out:
                diff = difflib.unified_diff(old.splitlines(True), out.splitlines(True),
                                            path + " (committed)", path + " (from the header)")
                sys.stderr.writelines(diff)
                print("generate.py: %s is out of date: run /usr/bin/python3 "
                      "bindings/generate.py" % path, file=sys.stderr)
                status = 1
        return status
    for path, out in sorted(files.items()):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8", newline="\n") as f:
            f.write(out)
        os.replace(tmp, path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
