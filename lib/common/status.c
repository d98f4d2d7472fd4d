/*
 * status.c — status code descriptions and the per-thread last-error message.
 *
 * Every failing path in the library ends in msci_fail(), which formats the message
 * into a thread-local buffer and returns the code. Nothing here allocates, prints or
 * logs: recording an error is silent (the caller decides whether to log it).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/internal.h"
#include "mosaic/mosaic.h"

/* Capacity of the per-thread message, terminating NUL included. Longer messages are
 * cut at a UTF-8 character boundary. */
#define MSCI_ERROR_CAPACITY 1024

static _Thread_local char tls_last_error[MSCI_ERROR_CAPACITY];

const char *msc_status_string(msc_status status) {
  switch (status) {
  case MSC_OK: return "success";
  case MSC_E_INVALID_ARGUMENT: return "invalid argument";
  case MSC_E_OUT_OF_MEMORY: return "out of memory";
  case MSC_E_IO: return "input/output error";
  case MSC_E_BAD_FORMAT: return "bad format";
  case MSC_E_UNSUPPORTED: return "unsupported";
  case MSC_E_BACKEND_UNAVAILABLE: return "backend unavailable";
  case MSC_E_DEVICE: return "device error";
  case MSC_E_NUMERICAL: return "numerical error";
  case MSC_E_SHAPE: return "shape mismatch";
  case MSC_E_NOT_FOUND: return "not found";
  case MSC_E_BUFFER_TOO_SMALL: return "buffer too small";
  case MSC_E_VERSION: return "incompatible version";
  case MSC_E_INTERNAL: return "internal error";
  case MSC_E_CANCELLED: return "cancelled";
  case MSC_E_COMM: return "distributed communication failed";
  default: return "unknown status";
  }
}

const char *msc_last_error(void) {
  return tls_last_error;
}

void msc_clear_error(void) {
  tls_last_error[0] = '\0';
}

/* (internal.h) Only the tail is examined: at most 3 continuation bytes. */
size_t msci_utf8_prefix(const char *s, size_t len) {
  size_t i = len;
  size_t cont = 0;
  while (i > 0 && cont < 4 && ((unsigned char)s[i - 1] & 0xC0u) == 0x80u) {
    i--;
    cont++;
  }
  if (i == 0) return len; /* only continuation bytes: not UTF-8 anyway, keep as is */
  unsigned char lead = (unsigned char)s[i - 1];
  size_t need;
  if (lead < 0x80u)
    return len; /* ASCII before the continuation bytes (or none): nothing to cut */
  else if ((lead & 0xE0u) == 0xC0u)
    need = 1;
  else if ((lead & 0xF0u) == 0xE0u)
    need = 2;
  else if ((lead & 0xF8u) == 0xF0u)
    need = 3;
  else
    return len;                 /* invalid lead byte: leave it alone */
  if (cont >= need) return len; /* the last sequence is complete */
  return i - 1;                 /* drop the incomplete sequence, lead byte included */
}

/* Shared by msci_fail and the host's fail (which is msci_fail itself). */
static msc_status fail_v(msc_status code, const char *fmt, va_list ap) {
  /* Format into a scratch buffer first: an argument may point into tls_last_error
   * itself (e.g. "%s", msc_last_error()), and vsnprintf must not overlap. */
  char tmp[MSCI_ERROR_CAPACITY];
  if (fmt == NULL) {
    tls_last_error[0] = '\0';
    return code;
  }
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  if (n < 0) {
    static const char broken[] = "(error message could not be formatted)";
    memcpy(tls_last_error, broken, sizeof broken);
    return code;
  }
  size_t len = (size_t)n;
  if (len >= sizeof tmp) /* truncated: vsnprintf wrote sizeof tmp - 1 chars + NUL */
    len = msci_utf8_prefix(tmp, sizeof tmp - 1);
  memcpy(tls_last_error, tmp, len);
  tls_last_error[len] = '\0';
  return code;
}

msc_status msci_fail(msc_status code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  msc_status rc = fail_v(code, fmt, ap);
  va_end(ap);
  return rc;
}
