"""The public header as a language-neutral model: the front end of every binding.

bindings/generate.py preprocesses and parses include/mosaic/mosaic.h once (pycparser)
and hands the result to each language's back-end as an `Api`:

    api.version     (major, minor, patch) from MSC_VERSION_*
    api.defines     [Define]   integer/float/string #defines and integer function macros
    api.enums       [(name, value)]
    api.structs     [Struct]   fields None for an opaque handle (msc_model, ...)
    api.typedefs    [(name, CType)]  scalar and callback aliases (msc_status, msc_log_fn)
    api.functions   [Function] every msc_ function, in the header's order, with the
                    comment block above it (doc) and its C prototype (proto)

A CType is a small tree (kind, and what the kind needs); back-ends map it to their own
types and never look at pycparser nodes. A construct the model cannot express raises
Unsupported, naming it, so a header change that a binding cannot follow fails loudly.
"""

import os
import re

from pycparser import c_ast, c_generator


class Unsupported(Exception):
    """A construct of the header that the bindings cannot express."""


class CType:
    """kind: void | bool | char | int (bits, signed) | size (signed: ptrdiff_t) |
    float (bits) | enum (name) | opaque (name) | struct (name) | ptr (to, const: whether
    the pointee is const) | array (to, count) | func (ret, params [(name, CType)]: a pointer to a function,
    the callbacks msc_log_fn and msc_progress_fn).
    alias: the typedef name the header used for it (msc_status, msc_log_fn), or None."""

    __slots__ = ("kind", "bits", "signed", "name", "to", "const", "count", "ret", "params",
                 "alias")

    def __init__(self, kind, **kw):
        self.kind = kind
        for k in self.__slots__[1:]:
            setattr(self, k, kw.get(k))

    def with_alias(self, alias):
        t = CType(self.kind, **{k: getattr(self, k) for k in self.__slots__[1:]})
        t.alias = alias
        return t

    def is_string(self):
        """const char * (a NUL-terminated string in, or a library-owned string out)."""
        return self.kind == "ptr" and self.const and self.to.kind == "char"

    def is_handle_ptr(self):
        """msc_x * for an opaque handle msc_x."""
        return self.kind == "ptr" and self.to.kind == "opaque"

    def is_handle_out(self):
        """msc_x ** for an opaque handle msc_x: a constructor's out-parameter."""
        return self.kind == "ptr" and self.to.kind == "ptr" and self.to.to.kind == "opaque"

    def __repr__(self):
        parts = [self.kind]
        for k in self.__slots__[1:]:
            v = getattr(self, k)
            if v is not None and v is not False:
                parts.append("%s=%r" % (k, v))
        return "CType(%s)" % ", ".join(parts)


class Define:
    """A #define: value is an int, float or str; params (a tuple of names) and expr (the
    body as an expression over them: integers, names, + - * // % << >> | & ^ ~ and
    parentheses, in Python's spelling) for a function-like macro, else None."""

    __slots__ = ("name", "value", "params", "expr", "doc")

    def __init__(self, name, value, params, expr, doc):
        self.name, self.value, self.params, self.expr, self.doc = name, value, params, expr, doc


class Struct:
    __slots__ = ("name", "fields", "doc")

    def __init__(self, name, fields, doc):
        self.name, self.fields, self.doc = name, fields, doc


class Function:
    """ret: CType; params: [(name, CType)]; doc: the comment block above the declaration
    in the header, cleaned of comment markers (paragraphs kept, one per line)."""

    __slots__ = ("name", "ret", "params", "doc", "proto")

    def __init__(self, name, ret, params, doc, proto):
        self.name, self.ret, self.params, self.doc, self.proto = name, ret, params, doc, proto


class Api:
    def __init__(self):
        self.version = None
        self.defines = []
        self.enums = []
        self.structs = []
        self.typedefs = []
        self.functions = []

    def struct(self, name):
        for s in self.structs:
            if s.name == name:
                return s
        return None

    def handles(self):
        """The opaque handle names, in the header's order."""
        return [s.name for s in self.structs if s.fields is None]


SCALARS = {
    "int8_t": ("int", 8, True), "uint8_t": ("int", 8, False),
    "int16_t": ("int", 16, True), "uint16_t": ("int", 16, False),
    "int32_t": ("int", 32, True), "uint32_t": ("int", 32, False),
    "int64_t": ("int", 64, True), "uint64_t": ("int", 64, False),
    "int": ("int", 32, True), "unsigned": ("int", 32, False),
    "unsigned int": ("int", 32, False),
    "size_t": ("size", None, False), "ptrdiff_t": ("size", None, True),
    "intptr_t": ("size", None, True), "uintptr_t": ("size", None, False),
    "float": ("float", 32, None), "double": ("float", 64, None),
    "_Bool": ("bool", None, None), "char": ("char", None, None),
    "void": ("void", None, None),
}


def function_docs(text):
    """{function name: the /** ... */ block above its declaration} from the header text.
    Declarations that follow one another without a blank line share the block above
    the first of them (msc_options_set_int, _set_float, ...)."""
    docs, doc, block = {}, "", None
    for line in text.splitlines():
        stripped = line.strip()
        if block is not None:
            if "*/" in stripped:
                block.append(stripped.split("*/")[0])
                lines = [re.sub(r"^\*\s?", "", l).rstrip() for l in block]
                doc, block = "\n".join(l for l in lines).strip("\n"), None
            else:
                block.append(stripped)
            continue
        if stripped.startswith("/**") and not stripped.startswith("/**<"):
            body = stripped[3:]
            if "*/" in body:
                doc = body.split("*/")[0].strip()
            else:
                block = [body] if body.strip() else []
            continue
        if not stripped:
            doc = ""
            continue
        m = re.match(r"MSC_API\b[^(]*?\b(msc_\w+)\s*\(", stripped)
        if m:
            docs[m.group(1)] = doc
    return docs


class _Builder:
    def __init__(self, header, api):
        self.header_name = os.path.basename(header)
        self.api = api
        self.aliases = {}     # typedef name -> CType
        self.cgen = c_generator.CGenerator()

    def mine(self, node):
        return node.coord is not None and os.path.basename(node.coord.file) == self.header_name

    def base(self, node, what):
        if isinstance(node, c_ast.IdentifierType):
            name = " ".join(node.names)
            if name in SCALARS:
                kind, bits, signed = SCALARS[name]
                return CType(kind, bits=bits, signed=signed)
            if name in self.aliases:
                return self.aliases[name]
            raise Unsupported("%s: unknown type %s" % (what, name))
        if isinstance(node, c_ast.Enum):
            return CType("enum", name=node.name, bits=32, signed=True)
        if isinstance(node, c_ast.Struct):
            s = self.api.struct(node.name)
            if s is None:
                raise Unsupported("%s: struct %s is not declared in the header"
                                  % (what, node.name))
            return CType("opaque" if s.fields is None else "struct", name=s.name)
        raise Unsupported("%s: unsupported type %s" % (what, type(node).__name__))

    def ctype(self, node, what):
        if isinstance(node, c_ast.TypeDecl):
            return self.base(node.type, what)
        if isinstance(node, c_ast.ArrayDecl):
            if not isinstance(node.dim, c_ast.Constant):
                return CType("ptr", to=self.ctype(node.type, what),
                             const="const" in getattr(node.type, "quals", []))
            return CType("array", to=self.ctype(node.type, what),
                         count=int(node.dim.value, 0))
        if isinstance(node, c_ast.PtrDecl):
            inner = node.type
            if isinstance(inner, c_ast.FuncDecl):
                return self.func(inner, what)
            const = isinstance(inner, (c_ast.TypeDecl, c_ast.PtrDecl)) and "const" in inner.quals
            return CType("ptr", to=self.ctype(inner, what), const=const)
        raise Unsupported("%s: unsupported declarator %s" % (what, type(node).__name__))

    def params(self, func, what):
        out = []
        if func.args is None:
            return out
        for i, p in enumerate(func.args.params):
            if isinstance(p, c_ast.EllipsisParam):
                raise Unsupported("%s: varargs" % what)
            t = self.ctype(p.type, "%s(%s)" % (what, p.name))
            if t.kind == "void":
                continue
            out.append((p.name or "arg%d" % i, t))
        return out

    def func(self, f, what):
        return CType("func", ret=self.ctype(f.type, what), params=self.params(f, what))

    def struct(self, s, name, doc):
        fields = None
        if s.decls is not None:
            fields = []
            for d in s.decls:
                if d.bitsize is not None:
                    raise Unsupported("%s.%s: bit fields" % (name, d.name))
                fields.append((d.name, self.ctype(d.type, "%s.%s" % (name, d.name))))
        old = self.api.struct(name)
        if old is None:
            self.api.structs.append(Struct(name, fields, doc))
        elif fields is not None:
            old.fields = fields

    def enum(self, e):
        value = -1
        known = dict(self.api.enums)
        for v in e.values.enumerators:
            if v.value is not None:
                src = self.cgen.visit(v.value)
                try:
                    value = int(eval(src, {"__builtins__": {}}, known))
                except Exception:
                    raise Unsupported("enumerator %s = %s" % (v.name, src))
            else:
                value += 1
            known[v.name] = value
            self.api.enums.append((v.name, value))

    def walk(self, ast, docs):
        for node in ast.ext:
            if not self.mine(node):
                continue
            if isinstance(node, c_ast.Typedef):
                t = node.type
                if isinstance(t, c_ast.TypeDecl) and isinstance(t.type, c_ast.Struct):
                    # typedef struct msc_x msc_x: the handle/struct is known by the typedef
                    self.struct(t.type, node.name, "struct %s" % (t.type.name or node.name))
                    self.aliases[node.name] = self.base(t.type if t.type.name else
                                                        c_ast.Struct(node.name, None), node.name)
                    continue
                if isinstance(t, c_ast.TypeDecl) and isinstance(t.type, c_ast.Enum):
                    if t.type.values is not None:
                        self.enum(t.type)
                    ct = CType("enum", name=node.name, bits=32, signed=True, alias=node.name)
                    self.aliases[node.name] = ct
                    self.api.typedefs.append((node.name, ct))
                    continue
                ct = self.ctype(t, node.name).with_alias(node.name)
                self.aliases[node.name] = ct
                self.api.typedefs.append((node.name, ct))
            elif isinstance(node, c_ast.Decl):
                t = node.type
                if isinstance(t, c_ast.FuncDecl):
                    if node.name is None or not node.name.startswith("msc_"):
                        continue
                    if "static" in node.storage or "inline" in node.funcspec:
                        raise Unsupported("%s: an inline function has no symbol" % node.name)
                    proto = re.sub(r"\s+", " ", self.cgen.visit(node).strip()) + ";"
                    self.api.functions.append(Function(
                        node.name, self.ctype(t.type, node.name), self.params(t, node.name),
                        docs.get(node.name, ""), proto))
                elif isinstance(t, c_ast.Struct):
                    self.struct(t, t.name, "struct %s" % t.name)
                elif isinstance(t, c_ast.Enum):
                    if t.values is not None:
                        self.enum(t)
                elif node.name is not None:
                    raise Unsupported("%s: exported variables are not supported" % node.name)


def build(header, ast, defines):
    """The Api of `header` from its pycparser AST and generate.parse_defines' result."""
    api = Api()
    with open(header, encoding="utf-8") as f:
        text = f.read()
    for name, params, src, doc in defines:
        if params is None:
            value = eval(src, {"__builtins__": {}})
            api.defines.append(Define(name, value, None, None, doc))
        else:
            api.defines.append(Define(name, None, params, src, doc))
    vals = {d.name: d.value for d in api.defines}
    try:
        api.version = tuple(int(vals["MSC_VERSION_" + k]) for k in ("MAJOR", "MINOR", "PATCH"))
    except KeyError as e:
        raise Unsupported("the header does not define %s" % e)
    _Builder(header, api).walk(ast, function_docs(text))
    if not api.functions:
        raise Unsupported("no msc_ function found in %s" % header)
    return api
