/*
 * version.c — the version of the library loaded at run time.
 *
 * Both values come from the macros of the public header this file was compiled with,
 * so they are the library's version (the caller's MSC_VERSION_* macros are the
 * header's it was compiled against; comparing the two detects a mismatch).
 */
#include <stdint.h>

#include "mosaic/mosaic.h"

#define MSCI_STR_(x) #x
#define MSCI_STR(x)  MSCI_STR_(x)
#define MSCI_VERSION_STRING                                                                    \
  MSCI_STR(MSC_VERSION_MAJOR) "." MSCI_STR(MSC_VERSION_MINOR) "." MSCI_STR(MSC_VERSION_PATCH)

uint32_t msc_version(void) {
  return (uint32_t)MSC_VERSION_NUMBER;
}

const char *msc_version_string(void) {
  return MSCI_VERSION_STRING;
}
