/*
 * file_read.c — reading a whole file into memory (file_read.h).
 */
#include "common/file_read.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "common/internal.h"

msc_status msci_file_open_regular(const char *path, int *fd_out, uint64_t *size) {
  /* O_NONBLOCK: opening a FIFO must not wait for a writer (it is refused below as not
   * a regular file); it is cleared afterwards, though it changes nothing for a regular
   * file. */
  int fd;
  do fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  while (fd < 0 && errno == EINTR);
  if (fd < 0) return msci_fail(MSC_E_IO, "%s: cannot open: %s", path, strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int e = errno;
    close(fd);
    return msci_fail(MSC_E_IO, "%s: cannot stat: %s", path, strerror(e));
  }
  if (!S_ISREG(st.st_mode)) {
    close(fd);
    return msci_fail(MSC_E_IO, "%s: not a regular file", path);
  }
  if (st.st_size < 0 || (uintmax_t)st.st_size > (uintmax_t)SIZE_MAX - 1) {
    close(fd);
    return msci_fail(MSC_E_IO, "%s: file too large for this address space", path);
  }
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) != 0) {
    int e = errno;
    close(fd);
    return msci_fail(MSC_E_IO, "%s: cannot clear O_NONBLOCK: %s", path, strerror(e));
  }
  *fd_out = fd;
  *size = (uint64_t)st.st_size;
  return MSC_OK;
}

msc_status msci_file_pread(int fd, const char *path, void *buf, size_t n, uint64_t off) {
  unsigned char *p = buf;
  size_t got = 0;
  while (got < n) {
    if (off + got > (uint64_t)INT64_MAX)
      return msci_fail(MSC_E_IO, "%s: offset %llu is past any file", path,
                       (unsigned long long)(off + got));
    ssize_t r = pread(fd, p + got, n - got, (off_t)(off + got));
    if (r < 0) {
      if (errno == EINTR) continue;
      return msci_fail(MSC_E_IO, "%s: read of %zu bytes at offset %llu failed: %s", path, n,
                       (unsigned long long)off, strerror(errno));
    }
    if (r == 0)
      return msci_fail(MSC_E_IO,
                       "%s: end of file at offset %llu while reading %zu bytes at offset %llu "
                       "(the file shrank after it was opened)",
                       path, (unsigned long long)(off + got), n, (unsigned long long)off);
    got += (size_t)r;
  }
  return MSC_OK;
}

msc_status msci_file_read_all(const char *path, unsigned char **bytes, size_t *len) {
  int fd;
  uint64_t fsize;
  MSCI_TRY(msci_file_open_regular(path, &fd, &fsize));
  size_t size = (size_t)fsize;
  unsigned char *buf = malloc(size > 0 ? size : 1);
  if (buf == NULL) {
    close(fd);
    return msci_fail(MSC_E_OUT_OF_MEMORY, "%s: out of memory for %zu bytes", path, size);
  }
  /* Read exactly size bytes, then make sure the file did not grow meanwhile. */
  size_t got = 0;
  int err = 0;
  for (;;) {
    unsigned char extra;
    size_t want = got < size ? size - got : 1;
    unsigned char *dst = got < size ? buf + got : &extra;
    ssize_t r = read(fd, dst, want);
    if (r < 0) {
      if (errno == EINTR) continue;
      err = errno;
      break;
    }
    if (r == 0) break;
    got += (size_t)r;
    if (got > size) break;
  }
  close(fd);
  if (err != 0) {
    free(buf);
    return msci_fail(MSC_E_IO, "%s: read failed: %s", path, strerror(err));
  }
  if (got != size) {
    free(buf);
    return msci_fail(MSC_E_IO, "%s: file changed size while being read (%zu bytes, %s)", path,
                     size, got < size ? "shrank" : "grew");
  }
  *bytes = buf;
  *len = size;
  return MSC_OK;
}

int msci_file_write_all(int fd, const void *buf, size_t len) {
  const unsigned char *p = buf;
  while (len > 0) {
    size_t chunk = len > (size_t)1 << 30 ? (size_t)1 << 30 : len;
    ssize_t w = write(fd, p, chunk);
    if (w < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (w == 0) return EIO;
    p += w;
    len -= (size_t)w;
  }
  return 0;
}
