"""The C++ binding: a header-only C++17 RAII wrapper, include/mosaic/mosaic.hpp.

render(api, header_rel) turns the model of bindings/api.py into one header that wraps
every function of the C header (docs/bindings.md, "C++"):

  - each opaque handle msc_x becomes a move-only class X (msc_model -> Model) that frees
    itself with msc_x_free; get()/release()/reset() reach the raw pointer, and an empty
    object (default-constructed or moved from) stands for NULL where a handle is passed;
  - a function msc_x_... with an msc_x ** out-parameter and no msc_x as first parameter
    is a static factory of X (Model::load, Dataset::open, ...);
  - every other function whose first parameter is a handle is a method of that handle's
    class (const for a const pointer); the rest are free functions in namespace mosaic;
  - the name drops "msc_" and, for members, the class prefix (msc_model_save -> save,
    msc_embed -> Model::embed).

Each function gets up to three overloads, all calling the C function directly:

  base   the C parameters with C++ types: handles as X & / const X &, msc_x ** as X &,
         const char * as mosaic::cstr (a const char * or a std::string);
  span   (when the function has them) each pointer + size_t pair as mosaic::span<T>,
         and each char *buf, size_t cap, size_t *len triple as std::string &;
  value  exception mode only, members and factories only: the trailing out-parameters
         (pointers to scalars, msc_x **, pointers to structs, strings) become the
         return value (one value, or a std::tuple in the C order).

A status-returning overload returns mosaic::Result: void (a failure throws
mosaic::Error) or, in no-exceptions mode, a [[nodiscard]] mosaic::Status.
The output depends only on the model, so the drift test can compare it byte for byte.
"""

from api import Unsupported

OUT = "include/mosaic/mosaic.hpp"

# Out-parameters whose pointer is an array the C doc sizes (not a scalar): they keep
# the function from getting a value overload. The types cannot tell them apart.
ARRAY_OUTS = {("msc_dataset_series", "days")}

CXX_KEYWORDS = {
    "alignas", "alignof", "and", "asm", "auto", "bool", "break", "case", "catch", "char",
    "class", "const", "continue", "default", "delete", "do", "double", "else", "enum",
    "explicit", "export", "extern", "false", "float", "for", "friend", "goto", "if",
    "inline", "int", "long", "mutable", "namespace", "new", "noexcept", "not", "nullptr",
    "operator", "or", "private", "protected", "public", "register", "return", "short",
    "signed", "sizeof", "static", "struct", "switch", "template", "this", "throw", "true",
    "try", "typedef", "typeid", "typename", "union", "unsigned", "using", "virtual",
    "void", "volatile", "while", "xor",
}


def class_name(handle):
    """msc_options -> Options, msc_step_result -> StepResult."""
    return "".join(p.capitalize() for p in handle[len("msc_"):].split("_"))


def ident(name):
    return name + "_" if name in CXX_KEYWORDS else name


def spelled(t):
    """The C spelling of a type."""
    if t.kind == "ptr":
        inner = spelled(t.to)
        if t.const:
            inner = inner + "const" if t.to.kind == "ptr" else "const " + inner
        return inner + ("*" if inner.endswith("*") else " *")
    if t.alias:
        return t.alias
    if t.kind == "void":
        return "void"
    if t.kind == "bool":
        return "bool"
    if t.kind == "char":
        return "char"
    if t.kind == "int":
        return "%sint%d_t" % ("" if t.signed else "u", t.bits)
    if t.kind == "size":
        return "ptrdiff_t" if t.signed else "size_t"
    if t.kind == "float":
        return "float" if t.bits == 32 else "double"
    if t.kind in ("enum", "opaque", "struct"):
        return t.name
    raise Unsupported("C++: cannot spell %r" % t)


def decl(type_str, name):
    return type_str + name if type_str.endswith("*") or type_str.endswith("&") \
        else type_str + " " + name


def is_scalar(t):
    return t.kind in ("int", "size", "float", "bool", "enum")


def is_status(t):
    return t.alias == "msc_status"


class Slot:
    """One C++ parameter and the C argument(s) it stands for.
    kind: plain | handle | handle_out | cstr | scalar_out | struct_out | span | string_out
    """

    def __init__(self, kind, name, ctype, cls=None, const=False, names=None):
        self.kind, self.name, self.ctype, self.cls, self.const = kind, name, ctype, cls, const
        self.names = names or [name]  # the C parameters it covers

    def cxx_type(self):
        if self.kind == "handle":
            return ("const %s &" if self.const else "%s &") % self.cls
        if self.kind == "handle_out":
            return "%s &" % self.cls
        if self.kind == "cstr":
            return "cstr"
        if self.kind == "span":
            return "span<%s%s>" % ("const " if self.const else "", spelled(self.ctype.to))
        if self.kind == "string_out":
            return "std::string &"
        return spelled(self.ctype)

    def param(self):
        return decl(self.cxx_type(), ident(self.name))

    def value_type(self):
        """The type a value overload returns for this out-parameter."""
        if self.kind == "handle_out":
            return self.cls
        if self.kind == "string_out":
            return "std::string"
        return spelled(self.ctype.to)

    def is_out(self):
        return self.kind in ("handle_out", "scalar_out", "struct_out", "string_out")


def base_slots(fn, params):
    out = []
    for name, t in params:
        if t.is_handle_ptr():
            out.append(Slot("handle", name, t, class_name(t.to.name), const=t.const))
        elif t.is_handle_out() and not t.to.const:
            out.append(Slot("handle_out", name, t, class_name(t.to.to.name)))
        elif t.is_string():
            out.append(Slot("cstr", name, t))
        elif (t.kind == "ptr" and not t.const and is_scalar(t.to)
              and (fn.name, name) not in ARRAY_OUTS):
            out.append(Slot("scalar_out", name, t))
        elif t.kind == "ptr" and not t.const and t.to.kind == "struct":
            out.append(Slot("struct_out", name, t))
        else:
            if t.kind == "func" and not t.alias:
                raise Unsupported("C++: %s(%s): a callback type without a typedef"
                                  % (fn.name, name))
            out.append(Slot("plain", name, t))
    return out


def is_size(t):
    return t.kind == "size" and not t.signed and not t.alias


def data_ptr(t):
    return t.kind == "ptr" and (is_scalar(t.to) or t.to.kind == "char")


def span_slots(fn, params):
    """The span form's slots, or None when the function has no pointer + length pair
    (or a pair whose length another pointer shares: msc_dataset_stats' mean and std)."""
    slots, i, changed = [], 0, False
    base = base_slots(fn, params)
    while i < len(params):
        name, t = params[i]
        nxt = params[i + 1][1] if i + 1 < len(params) else None
        nxt2 = params[i + 2][1] if i + 2 < len(params) else None
        if (t.kind == "ptr" and not t.const and t.to.kind == "char" and nxt is not None
                and is_size(nxt) and nxt2 is not None and nxt2.kind == "ptr"
                and not nxt2.const and is_size(nxt2.to)):
            slots.append(Slot("string_out", "out", t,
                              names=[name, params[i + 1][0], params[i + 2][0]]))
            i, changed = i + 3, True
            continue
        if data_ptr(t) and t.to.kind != "char" and nxt is not None and is_size(nxt):
            prev = params[i - 1][1] if i > 0 else None
            if prev is not None and data_ptr(prev) and prev.to.kind != "char":
                return None
            slots.append(Slot("span", name, t, const=t.const,
                              names=[name, params[i + 1][0]]))
            i, changed = i + 2, True
            continue
        slots.append(base[i])
        i += 1
    return slots if changed else None


def value_split(slots):
    """(inputs, outs) for a value overload, or None: the trailing run of out-parameters,
    when no other slot writes through a pointer."""
    k = len(slots)
    while k > 0 and slots[k - 1].is_out():
        k -= 1
    ins, outs = slots[:k], slots[k:]
    if not outs:
        return None
    for s in ins:
        if s.kind in ("scalar_out", "struct_out", "handle_out", "string_out"):
            return None
        if s.kind == "plain" and s.ctype.kind == "ptr" and not s.ctype.const:
            return None
    return ins, outs


class Member:
    """A function's place in the wrapper."""

    def __init__(self, fn, kind, cls, name, self_param, params):
        self.fn, self.kind, self.cls, self.name = fn, kind, cls, name
        self.self_param = self_param      # (name, CType) of `this`, or None
        self.params = params              # the C parameters the caller passes


def plan(api):
    handles = set(api.handles())
    members = []
    for fn in api.functions:
        p = fn.params
        first = p[0][1] if p else None
        last = p[-1][1] if p else None
        first_handle = first.to.name if first is not None and first.is_handle_ptr() else None
        if (first_handle and len(p) == 1 and fn.name == first_handle + "_free"
                and fn.ret.kind == "void"):
            members.append(Member(fn, "dtor", class_name(first_handle), None, p[0], []))
            continue
        out_handle = last.to.to.name if last is not None and last.is_handle_out() else None
        if (out_handle and fn.name.startswith(out_handle + "_")
                and first_handle != out_handle):
            members.append(Member(fn, "static", class_name(out_handle),
                                  ident(fn.name[len(out_handle) + 1:]), None, p))
        elif first_handle:
            prefix = first_handle + "_"
            short = fn.name[len(prefix):] if fn.name.startswith(prefix) else fn.name[4:]
            members.append(Member(fn, "method", class_name(first_handle), ident(short),
                                  p[0], p[1:]))
        else:
            members.append(Member(fn, "free", None, ident(fn.name[len("msc_"):]), None, p))
    freed = {m.cls for m in members if m.kind == "dtor"}
    for h in handles:
        if class_name(h) not in freed:
            raise Unsupported("C++: handle %s has no %s_free" % (h, h))
    return members


def comment(text, indent):
    lines = text.splitlines() or [""]
    return [indent + ("/// " + l if l.strip() else "///").rstrip() for l in lines]


def wrap_call(head, args, indent, tail, width=96):
    """`head(arg, arg, ...)tail` within width columns, continuation lines aligned."""
    one = "%s%s(%s)%s" % (indent, head, ", ".join(args), tail)
    if len(one) <= width:
        return [one]
    lines, cur = [], "%s%s(" % (indent, head)
    pad = " " * len(cur)
    for i, a in enumerate(args):
        piece = a + (", " if i + 1 < len(args) else ")" + tail)
        if cur.strip() and len(cur) + len(piece.rstrip()) > width and not cur.endswith("("):
            lines.append(cur.rstrip())
            cur = pad
        cur += piece
    lines.append(cur)
    return lines


BODY = 94  # the width of a body line before definition() indents it by two


class Overload:
    def __init__(self, member, slots, form, outs=None):
        self.m, self.slots, self.form, self.outs = member, slots, form, outs or []

    def ret_type(self):
        fn = self.m.fn
        if self.form == "value":
            types = [s.value_type() for s in self.outs]
            return types[0] if len(types) == 1 else "std::tuple<%s>" % ", ".join(types)
        if is_status(fn.ret):
            return "Result"
        return spelled(fn.ret)

    def const(self):
        return self.m.kind == "method" and self.m.self_param[1].const

    def signature(self, qualified):
        name = self.m.name
        if qualified and self.m.cls:
            name = "%s::%s" % (self.m.cls, name)
        return self.ret_type(), name, [s.param() for s in self.slots], \
            " const" if self.const() else ""

    def body(self):
        """The statements of the definition (without braces), indented by two."""
        fn, m = self.m.fn, self.m
        pre, post, args = [], [], []
        if m.self_param is not None:
            args.append("p_")
        by_name = {}
        for s in self.slots + self.outs:
            for n in s.names:
                by_name[n] = s
        string_out = None
        for cname, t in m.params:
            s = by_name[cname]
            v = ident(s.name)
            local = s.name + "_"
            if s.kind == "handle":
                args.append(v + ".get()")
            elif s.kind == "cstr":
                args.append(v + ".c_str()")
            elif s.kind == "span":
                args.append(v + ".data()" if cname == s.names[0] else v + ".size()")
            elif s.kind == "string_out":
                string_out = s
                args.append(("buf_", "cap_", "len_")[s.names.index(cname)])
            elif s.kind == "handle_out":
                if cname == s.name:
                    pre.append("%s *%s = nullptr;" % (t.to.to.name, local))
                    args.append("&" + local)
                    if self.form != "value":
                        post.append("if (st == MSC_OK) %s.reset(%s);" % (v, local))
            elif s in self.outs:
                if s.kind == "struct_out":
                    pre.append("%s %s{};" % (s.value_type(), local))
                    st = s.ctype.to
                    if any(f == "struct_size" for f, _ in (
                            self.api_struct(st.name).fields or [])):
                        pre.append("%s.struct_size = sizeof %s;" % (local, local))
                else:
                    pre.append("%s %s{};" % (s.value_type(), local))
                args.append("&" + local)
            else:
                args.append(v)
        lines = []
        if string_out is not None:
            target = (string_out.name + "_") if self.form == "value" else \
                ident(string_out.name)
            if self.form == "value":
                lines.append("std::string %s;" % target)
            head = "detail::fetch_string(%s, [&](char *buf_, size_t cap_, size_t *len_) {" % target
            call = wrap_call(fn.name, args, "    return ", ";", BODY)
            lines += [head] + call + ["});"]
            if self.form != "value":
                lines[0] = "return " + lines[0]
                return lines
            return lines + ["return %s;" % target]
        if self.form == "value":
            lines += pre
            lines += wrap_call(fn.name, args, "detail::check(", ");", BODY)
            lines.append(self.return_outs())
            return lines
        if is_status(fn.ret):
            if pre or post:
                lines += pre
                lines += wrap_call(fn.name, args, "const msc_status st = ", ";", BODY)
                lines += post
                lines.append("return detail::check(st);")
            else:
                lines += wrap_call(fn.name, args, "return detail::check(", ");", BODY)
            return lines
        return wrap_call(fn.name, args, "return ", ";", BODY)

    def return_outs(self):
        vals = []
        for s in self.outs:
            local = s.name + "_"
            vals.append("%s(%s)" % (s.cls, local) if s.kind == "handle_out" else local)
        if len(vals) == 1:
            return "return %s;" % vals[0]
        return "return std::tuple<%s>(%s);" % (", ".join(s.value_type() for s in self.outs),
                                                ", ".join(vals))


def overloads(member, api):
    fn = member.fn
    base = base_slots(fn, member.params)
    result = [Overload(member, base, "base")]
    spans = span_slots(fn, member.params)
    if spans is not None:
        result.append(Overload(member, spans, "span"))
    if member.kind in ("method", "static") and is_status(fn.ret):
        split = value_split(spans if spans is not None else base)
        if split is not None:
            result.append(Overload(member, split[0], "value", split[1]))
    for o in result:
        o.api_struct = api.struct
    return result


def declaration(o, indent, static):
    ret, name, params, const = o.signature(False)
    head = ("static " if static else "") + ret
    return wrap_call(decl(head, name), params, indent, const + ";")


def definition(o):
    ret, name, params, const = o.signature(True)
    lines = wrap_call("inline " + decl(ret, name), params, "", const + " {")
    return lines + ["  " + l if l else l for l in o.body()] + ["}"]


FORM_NOTE = {
    "span": "/// The same with each pointer + length pair as a span (a std::string for "
            "a string buffer).",
    "value": "/// The same, returning the out-parameter(s); throws mosaic::Error on failure.",
}


PRELUDE = r'''// mosaic.hpp — the C++17 interface of libmosaic: a header-only RAII wrapper of mosaic.h.
//
// GENERATED from {header} by bindings/gen_cpp.py (generate.py --lang cpp); do
// not edit: regenerate. docs/bindings.md ("C++") describes it.
//
// Handles. Each opaque handle of the C API is a move-only class that frees itself:
// msc_options -> mosaic::Options, msc_model -> Model, msc_batch -> Batch, msc_dataset ->
// Dataset, msc_loader -> Loader, msc_scene -> Scene. get() gives the raw pointer,
// release() gives it up, reset(p) frees the old one and takes p. An empty object
// (default-constructed, or moved from) passes NULL where the C function takes a handle
// (e.g. no runtime options for Model::load). Lifetimes are the C API's: a Loader must not
// outlive its Dataset, a Scene its Model.
//
// Functions. A C function that creates a handle is a static factory of its class
// (Model::load, Dataset::open, Options::create); one whose first parameter is a handle is
// a method of that class (const for a const pointer; msc_model_save -> Model::save,
// msc_embed -> Model::embed); the others are free functions (mosaic::loss_ntxent). Each
// has up to three overloads, documented by the C text above them:
//   base   the C parameters; a handle as X & or const X &, an msc_x ** out-parameter as
//          X & (reset on success), const char * as mosaic::cstr (a const char *, NULL
//          included, or a std::string);
//   span   each pointer + size_t length pair as a mosaic::span<T> (built from a pointer
//          and a length, a std::vector, a std::array or a C array), each char buffer +
//          capacity + length triple as a std::string &;
//   value  (exception mode, methods and factories) the trailing out-parameters returned:
//          one value, or a std::tuple in the C order (auto [bands, size] = ...).
// Library-owned strings (const char * returns) are returned as const char *, valid as
// long as the C function's doc says.
//
// Errors. A function that returns msc_status in C returns mosaic::Result:
//   - by default, Result is void and a status other than MSC_OK throws mosaic::Error (a
//     std::runtime_error; status() is the code, what() the msc_last_error() message);
//   - with MOSAIC_NO_EXCEPTIONS defined, or when exceptions are off (no
//     __cpp_exceptions: -fno-exceptions), Result is mosaic::Status, [[nodiscard]]: ok(),
//     code(), message(); the value overloads do not exist, and nothing throws.
// The two modes live in different inline namespaces, so translation units built in
// different modes cannot be linked into one program by mistake (a link error, not an
// ODR violation).
//
// Every function of mosaic.h is reachable: the wrapper calls each one (a test checks it),
// and mosaic.h itself stays included for its constants, structs and callbacks.
// clang-format off
#ifndef MOSAIC_MOSAIC_HPP
#define MOSAIC_MOSAIC_HPP

#include <mosaic/mosaic.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#if !defined(MOSAIC_NO_EXCEPTIONS) && !defined(__cpp_exceptions)
#define MOSAIC_NO_EXCEPTIONS 1
#endif

namespace mosaic {{
#ifdef MOSAIC_NO_EXCEPTIONS
inline namespace no_exceptions {{
#else
inline namespace exceptions {{
#endif

/// The header's version, {major}.{minor}.{patch}; mosaic::version() is the library's.
constexpr int header_version_major = {major};
constexpr int header_version_minor = {minor};
constexpr int header_version_patch = {patch};

/// A NUL-terminated string argument: a const char * (NULL allowed where the C function
/// allows it) or a std::string (which must outlive the call).
class cstr {{
public:
  cstr(const char *s) noexcept : p_(s) {{}}
  cstr(std::nullptr_t) noexcept : p_(nullptr) {{}}
  cstr(const std::string &s) noexcept : p_(s.c_str()) {{}}
  const char *c_str() const noexcept {{ return p_; }}

private:
  const char *p_;
}};

/// A pointer and a number of elements (C++17 has no std::span): from (pointer, size), a
/// std::vector, a std::array, a C array, or any container with data() and size().
template <typename T> class span {{
public:
  constexpr span() noexcept = default;
  constexpr span(T *data, std::size_t size) noexcept : data_(data), size_(size) {{}}
  template <std::size_t N> constexpr span(T (&a)[N]) noexcept : data_(a), size_(N) {{}}
  template <typename C, typename D = decltype(std::declval<C &>().data()),
            typename = std::enable_if_t<!std::is_same<std::decay_t<C>, span>::value &&
                                        std::is_convertible<D, T *>::value>>
  constexpr span(C &&c) noexcept : data_(c.data()), size_(c.size()) {{}}
  constexpr T *data() const noexcept {{ return data_; }}
  constexpr std::size_t size() const noexcept {{ return size_; }}
  constexpr bool empty() const noexcept {{ return size_ == 0; }}
  constexpr T *begin() const noexcept {{ return data_; }}
  constexpr T *end() const noexcept {{ return data_ + size_; }}
  constexpr T &operator[](std::size_t i) const noexcept {{ return data_[i]; }}

private:
  T *data_ = nullptr;
  std::size_t size_ = 0;
}};

/// The outcome of a call: MSC_OK, or an error code with the msc_last_error() message
/// captured when it failed. The result type of every call in no-exceptions mode.
class [[nodiscard]] Status {{
public:
  Status() noexcept = default;
  Status(msc_status code, std::string message) : code_(code), message_(std::move(message)) {{}}
  bool ok() const noexcept {{ return code_ == MSC_OK; }}
  explicit operator bool() const noexcept {{ return ok(); }}
  msc_status code() const noexcept {{ return code_; }}
  /// msc_last_error() at the failure ("" for MSC_OK).
  const std::string &message() const noexcept {{ return message_; }}
  /// msc_status_string(code()): "invalid argument", ...
  const char *description() const noexcept {{ return msc_status_string(code_); }}

private:
  msc_status code_ = MSC_OK;
  std::string message_;
}};

/// A failed call (exception mode): status() is the code, what() the msc_last_error()
/// message (msc_status_string(status()) when the library left none).
class Error : public std::runtime_error {{
public:
  Error(msc_status status, const std::string &message)
      : std::runtime_error(message.empty() ? msc_status_string(status) : message),
        status_(status) {{}}
  msc_status status() const noexcept {{ return status_; }}

private:
  msc_status status_;
}};

#ifdef MOSAIC_NO_EXCEPTIONS
using Result = Status;
#else
using Result = void;
#endif

/// A struct of the C API with struct_size set (msc_step_result, msc_vi_bands, ...).
template <typename T> T init() noexcept {{
  T v{{}};
  v.struct_size = sizeof(T);
  return v;
}}

namespace detail {{
#ifdef MOSAIC_NO_EXCEPTIONS
inline Status check(msc_status st) {{
  return st == MSC_OK ? Status() : Status(st, msc_last_error());
}}
#else
inline void check(msc_status st) {{
  if (st != MSC_OK) throw Error(st, msc_last_error());
}}
#endif

// The C API's string protocol (msc_options_get_string): ask for the length with cap = 0,
// then read into a buffer of that size (again if the value grew in between).
template <typename F> Result fetch_string(std::string &out, F &&call) {{
  size_t len = 0;
  msc_status st = call(nullptr, 0, &len);
  std::string buf;
  while (st == MSC_OK || st == MSC_E_BUFFER_TOO_SMALL) {{
    if (len < buf.size()) break;
    buf.assign(len + 1, '\0');
    st = call(&buf[0], buf.size(), &len);
  }}
  if (st == MSC_OK || (st == MSC_E_BUFFER_TOO_SMALL && len < buf.size())) {{
    buf.resize(len);
    out = std::move(buf);
    st = MSC_OK;
  }}
  return check(st);
}}
}} // namespace detail
'''


def render(api, header_rel):
    members = plan(api)
    o = []
    w = o.append
    major, minor, patch = api.version
    w(PRELUDE.format(header=header_rel, major=major, minor=minor, patch=patch))
    classes = [class_name(h) for h in api.handles()]
    w("")
    for c in classes:
        w("class %s;" % c)
    by_class = {c: [m for m in members if m.cls == c and m.kind != "dtor"] for c in classes}
    frees = {m.cls: m for m in members if m.kind == "dtor"}
    all_overloads = []
    for h in api.handles():
        c = class_name(h)
        w("")
        w("/// Owns an %s (null when empty); frees it with %s." % (h, frees[c].fn.name))
        w("class %s {" % c)
        w("public:")
        w("  %s() noexcept = default;" % c)
        w("  /// Takes ownership of p (NULL allowed).")
        w("  explicit %s(%s *p) noexcept : p_(p) {}" % (c, h))
        w("  ~%s() { reset(); }" % c)
        w("  %s(const %s &) = delete;" % (c, c))
        w("  %s &operator=(const %s &) = delete;" % (c, c))
        w("  %s(%s &&other) noexcept : p_(other.release()) {}" % (c, c))
        w("  %s &operator=(%s &&other) noexcept {" % (c, c))
        w("    if (this != &other) reset(other.release());")
        w("    return *this;")
        w("  }")
        w("  /// The raw handle, still owned by this object.")
        w("  %s *get() const noexcept { return p_; }" % h)
        w("  /// Gives up ownership: the caller frees the result with %s." % frees[c].fn.name)
        w("  %s *release() noexcept {" % h)
        w("    %s *p = p_;" % h)
        w("    p_ = nullptr;")
        w("    return p;")
        w("  }")
        w("  /// Frees the handle held (%s) and takes p." % frees[c].fn.name)
        w("  void reset(%s *p = nullptr) noexcept {" % h)
        w("    %s *old = p_;" % h)
        w("    p_ = p;")
        w("    if (old != nullptr) %s(old);" % frees[c].fn.name)
        w("  }")
        w("  explicit operator bool() const noexcept { return p_ != nullptr; }")
        for m in by_class[c]:
            ovs = overloads(m, api)
            all_overloads += ovs
            w("")
            o.extend(comment(m.fn.doc, "  "))
            w("  /// C: %s" % m.fn.proto)
            for ov in ovs:
                if ov.form == "value":
                    w("#ifndef MOSAIC_NO_EXCEPTIONS")
                if ov.form in FORM_NOTE:
                    w("  " + FORM_NOTE[ov.form])
                o.extend(declaration(ov, "  ", m.kind == "static"))
                if ov.form == "value":
                    w("#endif")
        w("")
        w("private:")
        w("  %s *p_ = nullptr;" % h)
        w("};")
    w("")
    w("// ---- free functions ----")
    for m in members:
        if m.kind != "free":
            continue
        ovs = overloads(m, api)
        w("")
        o.extend(comment(m.fn.doc, ""))
        w("/// C: %s" % m.fn.proto)
        for i, ov in enumerate(ovs):
            if ov.form in FORM_NOTE:
                w(FORM_NOTE[ov.form])
            o.extend(definition(ov))
    w("")
    w("// ---- member definitions ----")
    for ov in all_overloads:
        w("")
        if ov.form == "value":
            w("#ifndef MOSAIC_NO_EXCEPTIONS")
        o.extend(definition(ov))
        if ov.form == "value":
            w("#endif")
    w("")
    w("} // inline namespace")
    w("} // namespace mosaic")
    w("")
    w("#endif // MOSAIC_MOSAIC_HPP")
    w("// clang-format on")
    return {OUT: "\n".join(o) + "\n"}
