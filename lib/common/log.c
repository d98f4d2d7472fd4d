/*
 * log.c — the process-wide log callback.
 *
 * Thread safety: the setting (fn, user, max_level) is written and read under one
 * mutex, so a reader always sees a consistent triple (never the new fn with the old
 * user pointer). The callback itself is called after the mutex is released: a slow
 * callback never blocks other threads' logging or msc_set_log_callback, and a
 * callback that (against the rules) calls msc_set_log_callback cannot deadlock. The
 * price, documented in the header, is that a callback still running concurrently may
 * see the previous setting, and a callback may be called once more just after it was
 * removed by another thread.
 *
 * An atomic copy of the threshold (-1 without a callback) lets msci_log return at
 * once, without formatting or locking, for messages nobody will receive — debug
 * logging costs next to nothing when it is off.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "common/internal.h"
#include "mosaic/mosaic.h"

/* Longest line delivered to the callback, NUL included; longer lines are cut. */
#define MSCI_LOG_CAPACITY 1024

static pthread_mutex_t g_log_lock = PTHREAD_MUTEX_INITIALIZER;
static msc_log_fn g_log_fn;        /* guarded by g_log_lock */
static void *g_log_user;           /* guarded by g_log_lock */
static int32_t g_log_max;          /* guarded by g_log_lock */
static atomic_int g_log_gate = -1; /* max level, -1 when no callback */

msc_status msc_set_log_callback(msc_log_fn fn, void *user, int32_t max_level) {
  if (max_level < MSC_LOG_ERROR || max_level > MSC_LOG_DEBUG)
    return msci_fail(MSC_E_INVALID_ARGUMENT,
                     "msc_set_log_callback: max_level %d is not an MSC_LOG_* level "
                     "(%d..%d)",
                     (int)max_level, MSC_LOG_ERROR, MSC_LOG_DEBUG);
  pthread_mutex_lock(&g_log_lock);
  g_log_fn = fn;
  g_log_user = fn ? user : NULL;
  g_log_max = max_level;
  atomic_store(&g_log_gate, fn ? (int)max_level : -1);
  pthread_mutex_unlock(&g_log_lock);
  return MSC_OK;
}

static void log_v(int32_t level, const char *fmt, va_list ap) {
  if (fmt == NULL || level < MSC_LOG_ERROR || level > MSC_LOG_DEBUG) return;
  if (level > atomic_load_explicit(&g_log_gate, memory_order_relaxed))
    return; /* nobody listens at this level: skip the formatting */

  pthread_mutex_lock(&g_log_lock);
  msc_log_fn fn = g_log_fn;
  void *user = g_log_user;
  int32_t max = g_log_max;
  pthread_mutex_unlock(&g_log_lock);
  if (fn == NULL || level > max) return;

  int saved_errno = errno; /* logging must not disturb the caller's errno */
  char line[MSCI_LOG_CAPACITY];
  int n = vsnprintf(line, sizeof line, fmt, ap);
  if (n < 0) {
    errno = saved_errno;
    return;
  }
  size_t len = strlen(line);
  while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
    line[--len] = '\0'; /* the callback gets a line without its newline */
  fn(level, line, user);
  errno = saved_errno;
}

void msci_log(int32_t level, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  log_v(level, fmt, ap);
  va_end(ap);
}
