/*
 * test_status.c — status strings, the per-thread last error, logging, versions.
 *
 * Runs in Check's default fork mode (each test in its own process) and also with
 * CK_FORK=no (one process, for valgrind): every test leaves the log callback removed.
 * Threads never call ck_assert themselves; they record what they saw and the main
 * thread checks it.
 */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/registry.h"
#include "common/internal.h"
#include "mosaic/mosaic.h"

#define STR_(x) #x
#define STR(x)  STR_(x)

/* ------------------------------------------------------------------------------ */
/* Status strings                                                                  */
/* ------------------------------------------------------------------------------ */

START_TEST(status_strings_distinct_and_nonempty) {
  const char *seen[16];
  int n = 0;
  for (msc_status code = MSC_OK; code >= MSC_E_COMM; code--) {
    const char *s = msc_status_string(code);
    ck_assert_ptr_nonnull(s);
    ck_assert_msg(s[0] != '\0', "empty string for code %d", (int)code);
    ck_assert_msg(strcmp(s, "unknown status") != 0, "code %d is unknown", (int)code);
    for (int j = 0; j < n; j++)
      ck_assert_msg(strcmp(s, seen[j]) != 0, "code %d repeats \"%s\"", (int)code, s);
    seen[n++] = s;
  }
  ck_assert_int_eq(n, 16);
  ck_assert_str_eq(msc_status_string(MSC_OK), "success");
  ck_assert_str_eq(msc_status_string(MSC_E_INVALID_ARGUMENT), "invalid argument");
}
END_TEST

START_TEST(status_strings_unknown) {
  const msc_status unknown[] = {1, 2, 100, MSC_E_COMM - 1, -1000, INT32_MIN, INT32_MAX};
  for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++)
    ck_assert_str_eq(msc_status_string(unknown[i]), "unknown status");
}
END_TEST

/* ------------------------------------------------------------------------------ */
/* Last error                                                                      */
/* ------------------------------------------------------------------------------ */

static void *read_fresh_error(void *arg) {
  char *out = arg;
  snprintf(out, 64, "%s", msc_last_error());
  return NULL;
}

START_TEST(last_error_initially_empty) {
  /* A thread that never called the library has no error, whatever this one did. */
  msci_fail(MSC_E_IO, "set on the main thread");
  char seen[64] = "not written";
  pthread_t t;
  ck_assert_int_eq(pthread_create(&t, NULL, read_fresh_error, seen), 0);
  ck_assert_int_eq(pthread_join(t, NULL), 0);
  ck_assert_str_eq(seen, "");
  ck_assert_ptr_nonnull(msc_last_error());
}
END_TEST

START_TEST(last_error_after_failing_call) {
  msc_clear_error();
  ck_assert_int_eq(msc_set_log_callback(NULL, NULL, 99), MSC_E_INVALID_ARGUMENT);
  ck_assert_msg(strstr(msc_last_error(), "max_level") != NULL, "got \"%s\"", msc_last_error());
  ck_assert_msg(strstr(msc_last_error(), "99") != NULL, "got \"%s\"", msc_last_error());

  ck_assert_int_eq(msc_set_log_callback(NULL, NULL, -1), MSC_E_INVALID_ARGUMENT);

  ck_assert_int_eq(msc_backend_available("nope"), MSC_E_NOT_FOUND);
  ck_assert_msg(strstr(msc_last_error(), "'nope'") != NULL, "got \"%s\"", msc_last_error());
  ck_assert_msg(strstr(msc_last_error(), "cpu") != NULL, "got \"%s\"", msc_last_error());
}
END_TEST

START_TEST(msci_fail_formats_and_returns_code) {
  ck_assert_int_eq(msci_fail(MSC_E_SHAPE, "conv2d: x is %dx%d", 3, 4), MSC_E_SHAPE);
  ck_assert_str_eq(msc_last_error(), "conv2d: x is 3x4");
  ck_assert_int_eq(msci_fail(MSC_E_IO, "%s", ""), MSC_E_IO);
  ck_assert_str_eq(msc_last_error(), "");
  /* The new message may quote the old one: the buffers must not overlap. */
  msci_fail(MSC_E_IO, "inner");
  msci_fail(MSC_E_IO, "outer: %s (%s)", msc_last_error(), msc_last_error());
  ck_assert_str_eq(msc_last_error(), "outer: inner (inner)");
}
END_TEST

START_TEST(clear_error) {
  msci_fail(MSC_E_IO, "something failed");
  ck_assert_str_eq(msc_last_error(), "something failed");
  msc_clear_error();
  ck_assert_str_eq(msc_last_error(), "");
  msc_clear_error();
  ck_assert_str_eq(msc_last_error(), "");
}
END_TEST

START_TEST(success_leaves_error_alone) {
  msci_fail(MSC_E_IO, "earlier failure");
  ck_assert_int_eq(msc_set_log_callback(NULL, NULL, MSC_LOG_ERROR), MSC_OK);
  ck_assert_int_eq(msc_backend_available("cpu"), MSC_OK);
  ck_assert_int_ge(msc_backend_count(), 1);
  (void)msc_version();
  (void)msc_version_string();
  (void)msc_status_string(MSC_E_IO);
  msci_log(MSC_LOG_ERROR, "nobody listens");
  ck_assert_str_eq(msc_last_error(), "earlier failure");
}
END_TEST

/* Two threads set different errors; each must see its own. */
typedef struct thread_error {
  pthread_barrier_t *barrier;
  int index;
  msc_status returned;
  char seen[128];
} thread_error;

static void *set_and_read_error(void *arg) {
  thread_error *te = arg;
  te->returned = msci_fail(MSC_E_DEVICE - te->index, "error of thread %d", te->index);
  pthread_barrier_wait(te->barrier); /* both have set theirs before either reads */
  snprintf(te->seen, sizeof te->seen, "%s", msc_last_error());
  pthread_barrier_wait(te->barrier);
  return NULL;
}

START_TEST(last_error_is_per_thread) {
  msci_fail(MSC_E_IO, "error of the main thread");
  pthread_barrier_t barrier;
  ck_assert_int_eq(pthread_barrier_init(&barrier, NULL, 2), 0);
  thread_error te[2];
  pthread_t t[2];
  for (int i = 0; i < 2; i++) {
    memset(&te[i], 0, sizeof te[i]);
    te[i].barrier = &barrier;
    te[i].index = i + 1;
    ck_assert_int_eq(pthread_create(&t[i], NULL, set_and_read_error, &te[i]), 0);
  }
  for (int i = 0; i < 2; i++) ck_assert_int_eq(pthread_join(t[i], NULL), 0);
  pthread_barrier_destroy(&barrier);
  ck_assert_int_eq(te[0].returned, MSC_E_DEVICE - 1);
  ck_assert_int_eq(te[1].returned, MSC_E_DEVICE - 2);
  ck_assert_str_eq(te[0].seen, "error of thread 1");
  ck_assert_str_eq(te[1].seen, "error of thread 2");
  ck_assert_str_eq(msc_last_error(), "error of the main thread");
}
END_TEST

static int valid_utf8(const char *s) {
  const unsigned char *p = (const unsigned char *)s;
  while (*p) {
    int extra;
    if (*p < 0x80)
      extra = 0;
    else if ((*p & 0xE0) == 0xC0)
      extra = 1;
    else if ((*p & 0xF0) == 0xE0)
      extra = 2;
    else if ((*p & 0xF8) == 0xF0)
      extra = 3;
    else
      return 0;
    p++;
    for (int i = 0; i < extra; i++, p++)
      if ((*p & 0xC0) != 0x80) return 0;
  }
  return 1;
}

START_TEST(last_error_truncated_safely) {
  char *big = malloc(5001);
  ck_assert_ptr_nonnull(big);
  memset(big, 'x', 5000);
  big[5000] = '\0';
  ck_assert_int_eq(msci_fail(MSC_E_IO, "%s", big), MSC_E_IO);
  const char *e = msc_last_error();
  ck_assert_uint_eq(strlen(e), 1023);
  ck_assert_int_eq(strncmp(e, big, 1023), 0);

  /* Cut inside a two-byte character: the partial character is dropped. 1023 bytes of
   * room hold 511 "é" (1022 bytes) and half of the 512th. */
  char *accents = malloc(2 * 2000 + 1);
  ck_assert_ptr_nonnull(accents);
  for (int i = 0; i < 2000; i++) memcpy(accents + 2 * i, "\xc3\xa9", 2);
  accents[4000] = '\0';
  msci_fail(MSC_E_IO, "%s", accents);
  ck_assert_uint_eq(strlen(msc_last_error()), 1022);
  ck_assert(valid_utf8(msc_last_error()));
  /* Shifted by one ASCII byte, the cut falls on a boundary and nothing is dropped. */
  msci_fail(MSC_E_IO, "a%s", accents);
  ck_assert_uint_eq(strlen(msc_last_error()), 1023);
  ck_assert(valid_utf8(msc_last_error()));
  /* A three-byte character ("€") cut after one and after two of its bytes. */
  for (int shift = 0; shift < 3; shift++) {
    char *euros = malloc(3 * 400 + 1);
    ck_assert_ptr_nonnull(euros);
    for (int i = 0; i < 400; i++) memcpy(euros + 3 * i, "\xe2\x82\xac", 3);
    euros[1200] = '\0';
    msci_fail(MSC_E_IO, "%.*s%s", shift, "ab", euros);
    size_t len = strlen(msc_last_error());
    ck_assert(valid_utf8(msc_last_error()));
    ck_assert_uint_le(len, 1023);
    ck_assert_uint_ge(len, 1021);
    ck_assert_uint_eq((len - (size_t)shift) % 3, 0);
    free(euros);
  }
  free(accents);
  free(big);
}
END_TEST

/* ------------------------------------------------------------------------------ */
/* Logging                                                                         */
/* ------------------------------------------------------------------------------ */

typedef struct capture {
  int count;
  int32_t level;
  void *user;
  char message[2048];
} capture;

static void capture_log(int32_t level, const char *message, void *user) {
  capture *c = user;
  c->count++;
  c->level = level;
  c->user = user;
  snprintf(c->message, sizeof c->message, "%s", message);
}

START_TEST(log_callback_receives_messages) {
  capture c;
  memset(&c, 0, sizeof c);
  ck_assert_int_eq(msc_set_log_callback(capture_log, &c, MSC_LOG_WARNING), MSC_OK);

  msci_log(MSC_LOG_WARNING, "hello %d", 42);
  ck_assert_int_eq(c.count, 1);
  ck_assert_int_eq(c.level, MSC_LOG_WARNING);
  ck_assert_ptr_eq(c.user, &c);
  ck_assert_str_eq(c.message, "hello 42");

  msci_log(MSC_LOG_ERROR, "broken %s\n", "thing");
  ck_assert_int_eq(c.count, 2);
  ck_assert_int_eq(c.level, MSC_LOG_ERROR);
  ck_assert_str_eq(c.message, "broken thing"); /* no trailing newline */

  ck_assert_int_eq(msc_set_log_callback(NULL, NULL, MSC_LOG_ERROR), MSC_OK);
}
END_TEST

START_TEST(log_respects_max_level) {
  capture c;
  memset(&c, 0, sizeof c);
  ck_assert_int_eq(msc_set_log_callback(capture_log, &c, MSC_LOG_WARNING), MSC_OK);
  msci_log(MSC_LOG_INFO, "info");
  msci_log(MSC_LOG_DEBUG, "debug");
  ck_assert_int_eq(c.count, 0);
  msci_log(MSC_LOG_WARNING, "warning");
  ck_assert_int_eq(c.count, 1);

  ck_assert_int_eq(msc_set_log_callback(capture_log, &c, MSC_LOG_DEBUG), MSC_OK);
  msci_log(MSC_LOG_DEBUG, "debug");
  ck_assert_int_eq(c.count, 2);
  ck_assert_int_eq(c.level, MSC_LOG_DEBUG);
  /* Levels that are not MSC_LOG_* values are never delivered. */
  msci_log(-1, "negative");
  msci_log(4, "too verbose");
  ck_assert_int_eq(c.count, 2);

  ck_assert_int_eq(msc_set_log_callback(capture_log, &c, MSC_LOG_ERROR), MSC_OK);
  msci_log(MSC_LOG_WARNING, "warning");
  ck_assert_int_eq(c.count, 2);
  msci_log(MSC_LOG_ERROR, "error");
  ck_assert_int_eq(c.count, 3);

  ck_assert_int_eq(msc_set_log_callback(NULL, NULL, MSC_LOG_ERROR), MSC_OK);
}
END_TEST

START_TEST(log_removal_and_invalid_level) {
  capture c;
  memset(&c, 0, sizeof c);
  ck_assert_int_eq(msc_set_log_callback(capture_log, &c, MSC_LOG_INFO), MSC_OK);
  /* A rejected setting leaves the previous one in place. */
  ck_assert_int_eq(msc_set_log_callback(NULL, NULL, 4), MSC_E_INVALID_ARGUMENT);
  msci_log(MSC_LOG_INFO, "still here");
  ck_assert_int_eq(c.count, 1);
  ck_assert_str_eq(c.message, "still here");

  ck_assert_int_eq(msc_set_log_callback(NULL, &c, MSC_LOG_DEBUG), MSC_OK);
  msci_log(MSC_LOG_ERROR, "nobody listens");
  msci_log(MSC_LOG_DEBUG, "nobody listens");
  ck_assert_int_eq(c.count, 1);

  /* Reinstalling works again. */
  ck_assert_int_eq(msc_set_log_callback(capture_log, &c, MSC_LOG_ERROR), MSC_OK);
  msci_log(MSC_LOG_ERROR, "back");
  ck_assert_int_eq(c.count, 2);
  ck_assert_int_eq(msc_set_log_callback(NULL, NULL, MSC_LOG_ERROR), MSC_OK);
}
END_TEST

START_TEST(log_long_message_and_side_effects) {
  capture c;
  memset(&c, 0, sizeof c);
  ck_assert_int_eq(msc_set_log_callback(capture_log, &c, MSC_LOG_DEBUG), MSC_OK);
  char big[5001];
  memset(big, 'y', 5000);
  big[5000] = '\0';
  msci_fail(MSC_E_IO, "kept");
  errno = ERANGE;
  msci_log(MSC_LOG_INFO, "%s", big);
  ck_assert_int_eq(errno, ERANGE);            /* logging keeps errno */
  ck_assert_str_eq(msc_last_error(), "kept"); /* and the last error */
  ck_assert_int_eq(c.count, 1);
  ck_assert_uint_gt(strlen(c.message), 100);
  ck_assert_uint_lt(strlen(c.message), 5000);
  ck_assert_int_eq(strncmp(c.message, big, strlen(c.message)), 0);
  ck_assert_int_eq(msc_set_log_callback(NULL, NULL, MSC_LOG_ERROR), MSC_OK);
}
END_TEST

START_TEST(host_table_forwards) {
  const mbk_host *host = msci_host();
  ck_assert_ptr_nonnull(host);
  ck_assert_ptr_eq(host, msci_host());
  ck_assert_uint_eq(host->api_version, MBK_API_VERSION);
  ck_assert_uint_eq(host->struct_size, sizeof(mbk_host));
  ck_assert(host->log != NULL);
  ck_assert((host->fail) != NULL); /* parenthesised: check.h defines a fail() macro */

  capture c;
  memset(&c, 0, sizeof c);
  ck_assert_int_eq(msc_set_log_callback(capture_log, &c, MSC_LOG_INFO), MSC_OK);
  host->log(MSC_LOG_INFO, "from a module: %d", 7);
  ck_assert_int_eq(c.count, 1);
  ck_assert_int_eq(c.level, MSC_LOG_INFO);
  ck_assert_str_eq(c.message, "from a module: 7");
  host->log(MSC_LOG_DEBUG, "filtered");
  ck_assert_int_eq(c.count, 1);
  ck_assert_int_eq(msc_set_log_callback(NULL, NULL, MSC_LOG_ERROR), MSC_OK);

  ck_assert_int_eq((host->fail)(MSC_E_DEVICE, "device %d lost", 3), MSC_E_DEVICE);
  ck_assert_str_eq(msc_last_error(), "device 3 lost");
}
END_TEST

/* Threads log while the main thread keeps changing the setting: no crash, no torn
 * (callback, user) pair — every delivery carries the user pointer it was set with. */
static atomic_int g_delivered;
static atomic_int g_torn;
static int g_user_a, g_user_b;

static void counting_log_a(int32_t level, const char *message, void *user) {
  (void)level, (void)message;
  if (user != &g_user_a) atomic_fetch_add(&g_torn, 1);
  atomic_fetch_add(&g_delivered, 1);
}

static void counting_log_b(int32_t level, const char *message, void *user) {
  (void)level, (void)message;
  if (user != &g_user_b) atomic_fetch_add(&g_torn, 1);
  atomic_fetch_add(&g_delivered, 1);
}

static void *log_a_lot(void *arg) {
  (void)arg;
  for (int i = 0; i < 20000; i++) msci_log(MSC_LOG_ERROR, "message %d", i);
  return NULL;
}

START_TEST(log_concurrent_with_changes) {
  atomic_store(&g_delivered, 0);
  atomic_store(&g_torn, 0);
  ck_assert_int_eq(msc_set_log_callback(counting_log_a, &g_user_a, MSC_LOG_DEBUG), MSC_OK);
  pthread_t t[4];
  for (int i = 0; i < 4; i++) ck_assert_int_eq(pthread_create(&t[i], NULL, log_a_lot, NULL), 0);
  for (int i = 0; i < 2000; i++) {
    if (i % 3 == 0)
      msc_set_log_callback(counting_log_a, &g_user_a, MSC_LOG_DEBUG);
    else if (i % 3 == 1)
      msc_set_log_callback(counting_log_b, &g_user_b, MSC_LOG_WARNING);
    else
      msc_set_log_callback(NULL, NULL, MSC_LOG_DEBUG);
  }
  for (int i = 0; i < 4; i++) ck_assert_int_eq(pthread_join(t[i], NULL), 0);
  ck_assert_int_eq(msc_set_log_callback(NULL, NULL, MSC_LOG_ERROR), MSC_OK);
  ck_assert_int_eq(atomic_load(&g_torn), 0);
  ck_assert_int_le(atomic_load(&g_delivered), 4 * 20000);
}
END_TEST

/* ------------------------------------------------------------------------------ */
/* Versions                                                                        */
/* ------------------------------------------------------------------------------ */

START_TEST(versions) {
  ck_assert_uint_eq(msc_version(), MSC_VERSION_NUMBER);
  ck_assert_uint_eq(msc_version(), (uint32_t)(MSC_VERSION_MAJOR * 10000 +
                                              MSC_VERSION_MINOR * 100 + MSC_VERSION_PATCH));
  ck_assert_str_eq(msc_version_string(), STR(MSC_VERSION_MAJOR) "." STR(
                                             MSC_VERSION_MINOR) "." STR(MSC_VERSION_PATCH));
  char expected[64];
  snprintf(expected, sizeof expected, "%d.%d.%d", MSC_VERSION_MAJOR, MSC_VERSION_MINOR,
           MSC_VERSION_PATCH);
  ck_assert_str_eq(msc_version_string(), expected);
  ck_assert_ptr_eq(msc_version_string(), msc_version_string()); /* static storage */
}
END_TEST

static Suite *status_suite(void) {
  Suite *s = suite_create("status");

  TCase *tc = tcase_create("status strings");
  tcase_add_test(tc, status_strings_distinct_and_nonempty);
  tcase_add_test(tc, status_strings_unknown);
  suite_add_tcase(s, tc);

  tc = tcase_create("last error");
  tcase_add_test(tc, last_error_initially_empty);
  tcase_add_test(tc, last_error_after_failing_call);
  tcase_add_test(tc, msci_fail_formats_and_returns_code);
  tcase_add_test(tc, clear_error);
  tcase_add_test(tc, success_leaves_error_alone);
  tcase_add_test(tc, last_error_is_per_thread);
  tcase_add_test(tc, last_error_truncated_safely);
  suite_add_tcase(s, tc);

  tc = tcase_create("logging");
  tcase_add_test(tc, log_callback_receives_messages);
  tcase_add_test(tc, log_respects_max_level);
  tcase_add_test(tc, log_removal_and_invalid_level);
  tcase_add_test(tc, log_long_message_and_side_effects);
  tcase_add_test(tc, host_table_forwards);
  tcase_add_test(tc, log_concurrent_with_changes);
  suite_add_tcase(s, tc);

  tc = tcase_create("versions");
  tcase_add_test(tc, versions);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(status_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
