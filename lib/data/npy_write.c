/*
 * npy_write.c — a minimal NumPy .npy writer (format 1.0, little-endian, C order):
 * lib/data/npy_write.h has the contract.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/npy_write.h"
#include "common/file_read.h"
#include "common/internal.h"

/* The element size of a supported descr, 0 for another string. */
static size_t dtype_size(const char *dtype) {
  static const struct {
    const char *descr;
    size_t size;
  } k[] = {{"|u1", 1}, {"|i1", 1}, {"<i2", 2}, {"<u2", 2}, {"<i4", 4},
           {"<u4", 4}, {"<i8", 8}, {"<f4", 4}, {"<f8", 8}};
  for (size_t i = 0; i < sizeof k / sizeof *k; ++i)
    if (!strcmp(dtype, k[i].descr)) return k[i].size;
  return 0;
}

static int host_is_little_endian(void) {
  const uint16_t one = 1;
  unsigned char b;
  memcpy(&b, &one, 1);
  return b == 1;
}

/* The header, magic to '\n', into out (cap bytes); its length, or 0 if it does not fit. */
static size_t make_header(char *out, size_t cap, const char *dtype, int32_t ndim,
                          const int64_t *shape) {
  char dict[1024];
  int len =
      snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (", dtype);
  for (int32_t d = 0; d < ndim; ++d)
    len += snprintf(dict + len, sizeof dict - (size_t)len, "%s%lld", d ? ", " : "",
                    (long long)shape[d]);
  len += snprintf(dict + len, sizeof dict - (size_t)len, "%s), }", ndim == 1 ? "," : "");
  /* magic (6) + version (2) + length (2) + dict + padding + '\n', a multiple of 64. */
  size_t total = 10 + (size_t)len + 1;
  total = (total + 63) / 64 * 64;
  if (total > cap || total - 10 > 65535) return 0;
  memcpy(out, "\x93NUMPY\x01\x00", 8);
  const size_t hlen = total - 10;
  out[8] = (char)(hlen & 0xff);
  out[9] = (char)(hlen >> 8);
  memcpy(out + 10, dict, (size_t)len);
  memset(out + 10 + len, ' ', total - 10 - (size_t)len - 1);
  out[total - 1] = '\n';
  return total;
}

msc_status msci_npy_write(const char *path, const char *dtype, int32_t ndim,
                          const int64_t *shape, const void *data) {
  if (!path || !dtype || (ndim > 0 && !shape))
    return msci_fail(MSC_E_INVALID_ARGUMENT, "npy: NULL argument");
  const size_t esize = dtype_size(dtype);
  if (!esize) return msci_fail(MSC_E_INVALID_ARGUMENT, "npy: unsupported dtype \"%s\"", dtype);
  if (ndim < 0 || ndim > MSCI_NPY_WRITE_MAX_DIM)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "npy: ndim = %d, must be 0..%d", (int)ndim,
                     MSCI_NPY_WRITE_MAX_DIM);
  uint64_t count = 1;
  for (int32_t d = 0; d < ndim; ++d) {
    if (shape[d] < 0 || (shape[d] > 0 && count > (UINT64_MAX / 16) / (uint64_t)shape[d]))
      return msci_fail(MSC_E_INVALID_ARGUMENT, "npy: bad dimension %d: %lld", (int)d,
                       (long long)shape[d]);
    count *= (uint64_t)shape[d];
  }
  if (count > 0 && !data) return msci_fail(MSC_E_INVALID_ARGUMENT, "npy: NULL data");

  char header[2048];
  const size_t hlen = make_header(header, sizeof header, dtype, ndim, shape);
  if (!hlen) return msci_fail(MSC_E_INVALID_ARGUMENT, "npy: header too long");

  char tmp[4200];
  if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "npy: path too long: %s", path);
  /* write(2), not stdio: every failure keeps its errno for the message, and fsync before
   * the rename means a crash leaves the old file or the whole new one, never a torn one. */
  int fd;
  do fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  while (fd < 0 && errno == EINTR);
  if (fd < 0) return msci_fail(MSC_E_IO, "npy: cannot create %s: %s", tmp, strerror(errno));
  const char *what = "write";
  int e = msci_file_write_all(fd, header, hlen);
  const unsigned char *src = data;
  const uint64_t bytes = count * esize;
  if (host_is_little_endian() || esize == 1) {
    if (e == 0 && bytes > 0) e = msci_file_write_all(fd, src, (size_t)bytes);
  } else {
    /* Big-endian host: reverse each element, a chunk at a time. */
    unsigned char chunk[8192];
    uint64_t done = 0;
    while (e == 0 && done < bytes) {
      size_t len = bytes - done < sizeof chunk ? (size_t)(bytes - done) : sizeof chunk;
      for (size_t i = 0; i < len; i += esize)
        for (size_t k = 0; k < esize; ++k) chunk[i + k] = src[done + i + esize - 1 - k];
      e = msci_file_write_all(fd, chunk, len);
      done += len;
    }
  }
  if (e == 0) {
    int r;
    do r = fsync(fd);
    while (r != 0 && errno == EINTR);
    if (r != 0) e = errno, what = "fsync";
  }
  if (close(fd) != 0 && e == 0) e = errno, what = "close";
  if (e == 0 && rename(tmp, path) != 0) e = errno, what = "rename";
  if (e != 0) {
    unlink(tmp);
    return msci_fail(MSC_E_IO, "npy: %s: %s of temporary file %s failed: %s", path, what, tmp,
                     strerror(e));
  }
  return MSC_OK;
}
