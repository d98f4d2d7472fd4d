/*
 * dataset_files.c — file-system helpers of the dataset openers (dataset_files.h).
 */
#include "data/dataset_files.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <sys/stat.h>

#include "common/internal.h"
#include "data/lines.h"

int msci_is_file(const char *path) {
  struct stat sb;
  return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

int msci_is_dir(const char *path) {
  struct stat sb;
  return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

void msci_names_free(char **names, int64_t n) {
  if (!names) return;
  for (int64_t i = 0; i < n; ++i) free(names[i]);
  free(names);
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

msc_status msci_list_dir(const char *dir, char what, char ***names, int64_t *n) {
  *names = NULL;
  *n = 0;
  DIR *d = opendir(dir);
  if (!d) return msci_fail(MSC_E_IO, "cannot list %s: %s", dir, strerror(errno));
  char **out = NULL, *path = NULL;
  int64_t cnt = 0, cap = 0;
  size_t pcap = 0;
  msc_status st = MSC_OK;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    if (!msci_path_printf(&path, &pcap, "%s/%s", dir, e->d_name)) {
      st = MSC_E_OUT_OF_MEMORY;
      break;
    }
    if ((what == 'd' && !msci_is_dir(path)) || (what == 'f' && !msci_is_file(path))) continue;
    if (cnt == cap) {
      int64_t nc = cap ? cap * 2 : 64;
      char **p = realloc(out, (size_t)nc * sizeof *p);
      if (!p) {
        st = msci_fail(MSC_E_OUT_OF_MEMORY, "out of memory listing %s", dir);
        break;
      }
      out = p;
      cap = nc;
    }
    if (!(out[cnt] = strdup(e->d_name))) {
      st = msci_fail(MSC_E_OUT_OF_MEMORY, "out of memory listing %s", dir);
      break;
    }
    cnt++;
  }
  closedir(d);
  free(path);
  if (st != MSC_OK) {
    msci_names_free(out, cnt);
    return st;
  }
  if (cnt > 1) qsort(out, (size_t)cnt, sizeof *out, cmp_str);
  *names = out;
  *n = cnt;
  return MSC_OK;
}

msc_status msci_name_set_add(msci_name_set *s, const char *name) {
  if (s->n == s->cap) {
    int64_t nc = s->cap ? s->cap * 2 : 256;
    char **p = realloc(s->names, (size_t)nc * sizeof *p);
    if (!p) return msci_fail(MSC_E_OUT_OF_MEMORY, "out of memory");
    s->names = p;
    s->cap = nc;
  }
  if (!(s->names[s->n] = strdup(name))) return msci_fail(MSC_E_OUT_OF_MEMORY, "out of memory");
  s->n++;
  return MSC_OK;
}

msc_status msci_name_set_load(msci_name_set *s, const char *path, int strip_ext) {
  msci_lines rd;
  MSCI_TRY(msci_lines_open(&rd, path));
  msc_status st = MSC_OK;
  int r;
  while ((r = msci_lines_next(&rd)) > 0) {
    char *line = rd.line;
    line[strcspn(line, ",\t")] = '\0';
    size_t len = strlen(line);
    while (len > 0 && line[len - 1] == ' ') line[--len] = '\0';
    if (len == 0) continue;
    if (strip_ext && len > 4 &&
        (!strcmp(line + len - 4, ".tif") || !strcmp(line + len - 4, ".jpg") ||
         !strcmp(line + len - 4, ".png")))
      line[len - 4] = '\0';
    if ((st = msci_name_set_add(s, line)) != MSC_OK) break;
  }
  if (r < 0 && st == MSC_OK) st = rd.st;
  msci_lines_close(&rd);
  return st;
}

void msci_name_set_seal(msci_name_set *s) {
  if (s->n > 1) qsort(s->names, (size_t)s->n, sizeof *s->names, cmp_str);
}

int msci_name_set_has(const msci_name_set *s, const char *name) {
  if (s->n == 0) return 0;
  return bsearch(&name, s->names, (size_t)s->n, sizeof *s->names, cmp_str) != NULL;
}

const char *msci_name_set_duplicate(const msci_name_set *s) {
  for (int64_t i = 1; i < s->n; ++i)
    if (!strcmp(s->names[i - 1], s->names[i])) return s->names[i];
  return NULL;
}

void msci_name_set_free(msci_name_set *s) {
  msci_names_free(s->names, s->n);
  memset(s, 0, sizeof *s);
}

char *msci_path_printf(char **buf, size_t *cap, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int need = vsnprintf(*buf, *buf ? *cap : 0, fmt, ap);
  va_end(ap);
  if (need < 0) {
    msci_fail(MSC_E_INTERNAL, "path formatting failed");
    return NULL;
  }
  if ((size_t)need + 1 > *cap || !*buf) {
    size_t nc = (size_t)need + 64;
    char *p = realloc(*buf, nc);
    if (!p) {
      msci_fail(MSC_E_OUT_OF_MEMORY, "out of memory");
      return NULL;
    }
    *buf = p;
    *cap = nc;
    va_start(ap, fmt);
    vsnprintf(*buf, *cap, fmt, ap);
    va_end(ap);
  }
  return *buf;
}

int msci_path_inside(const char *root_real, const char *path) {
  /* The deepest existing prefix of path, resolved by realpath, then the missing tail as
   * written: a tail with ".." could climb out once created, so it counts as outside. */
  const size_t n = strlen(path);
  char *head = malloc(n + 2), resolved[PATH_MAX];
  if (!head) {
    msci_fail(MSC_E_OUT_OF_MEMORY, "out of memory checking %s", path);
    return -1;
  }
  memcpy(head, path, n + 1);
  const char *tail = NULL;
  size_t cut = n;
  for (;;) {
    if (realpath(head[0] ? head : ".", resolved)) break;
    if (errno != ENOENT && errno != ENOTDIR) {
      free(head);
      return 0; /* unresolvable (a loop, permissions, too long): not provably inside */
    }
    while (cut > 0 && head[cut - 1] != '/') cut--;
    if (cut == 0 && head[0] == '\0') {
      free(head);
      return 0;
    }
    tail = path + cut;
    head[cut > 1 ? cut - 1 : cut] = '\0'; /* "/x" keeps "/" */
    if (cut > 0) cut--; /* "a/b" with no "a" ends with head "" : the working directory */
  }
  free(head);
  if (tail) /* a ".." component in the part that does not exist yet */
    for (const char *c = tail; *c;) {
      size_t len = strcspn(c, "/");
      if (len == 2 && c[0] == '.' && c[1] == '.') return 0;
      c += len;
      while (*c == '/') c++;
    }
  const size_t rl = strlen(root_real);
  if (rl == 1 && root_real[0] == '/') return 1;
  return strncmp(resolved, root_real, rl) == 0 && (resolved[rl] == '\0' || resolved[rl] == '/');
}
