// header_only.cpp — the public header compiles on its own as strict C++11 with
// -Wall -Wextra -pedantic -Werror (extern "C" linkage included), and the program
// links against the shared library. Exit status 0 when the library's run-time version
// is the header's version.
#include <mosaic/mosaic.h>

// Only mosaic.h is included: every type used below must come from it.

extern "C" {
static void on_log(int32_t level, const char *message, void *user) {
  static_cast<void>(level);
  static_cast<void>(message);
  static_cast<void>(user);
}
}

int main() {
  msc_status st = MSC_OK;
  msc_log_fn fn = on_log;
  const char *chosen = nullptr;
  static_assert(sizeof(msc_status) == 4, "msc_status is 32-bit");
  static_assert(MSC_E_INVALID_ARGUMENT < 0 && MSC_E_CANCELLED < 0, "errors are negative");
  static_assert(MSC_LOG_ERROR < MSC_LOG_DEBUG, "log levels are ordered");
  static_assert(MSC_VERSION_NUMBER ==
                    MSC_VERSION_MAJOR * 10000 + MSC_VERSION_MINOR * 100 + MSC_VERSION_PATCH,
                "version number encoding");

  static_cast<void>(fn);
  static_cast<void>(chosen);
  if (msc_status_string(st) == nullptr) return 1;
  return msc_version() == static_cast<uint32_t>(MSC_VERSION_NUMBER) ? 0 : 1;
}
