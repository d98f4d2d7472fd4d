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

msc_status msci_file_read_all(const char *path, unsigned char **bytes, size_t *len) {
  /* O_NONBLOCK: opening a FIFO must not wait for a writer (it is refused below as not
   * a regular file); it changes nothing for reads of a regular file. */
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
  size_t size = (size_t)st.st_size;
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
