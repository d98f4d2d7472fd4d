/*
 * dataset_files.h — file-system helpers shared by the dataset openers: existence checks,
 * Layer: data (lib/data/README.md says what it owns and may include).
 * sorted directory listings (so the sample order never depends on the file system), and
 * sets of names read from split / exclusion lists.
 */
#ifndef MOSAIC_LIB_DATASET_FILES_H
#define MOSAIC_LIB_DATASET_FILES_H

#include <stdint.h>

#include "mosaic/mosaic.h"

/* 1 if path is a regular file (after symlinks), else 0. */
int msci_is_file(const char *path);
/* 1 if path is a directory, else 0. */
int msci_is_dir(const char *path);

/* The entries of dir (without "." and ".."), sorted by strcmp. what: 'd' directories only,
 * 'f' regular files only. *names is an owned array of owned strings (free with
 * msci_names_free). MSC_E_IO names the directory. */
msc_status msci_list_dir(const char *dir, char what, char ***names, int64_t *n);
void msci_names_free(char **names, int64_t n);

/* A sorted set of names for membership tests. */
typedef struct msci_name_set {
  char **names;
  int64_t n, cap;
} msci_name_set;

/* Adds the first field (up to ',', '\t' or the end) of every non-empty line of path,
 * without a trailing ".tif"/".jpg"/".png" extension when strip_ext; the file may be
 * zstd-compressed. Call msci_name_set_seal before lookups. */
msc_status msci_name_set_load(msci_name_set *s, const char *path, int strip_ext);
msc_status msci_name_set_add(msci_name_set *s, const char *name);
void msci_name_set_seal(msci_name_set *s);
int msci_name_set_has(const msci_name_set *s, const char *name);
/* A name the sealed set holds more than once, or NULL. */
const char *msci_name_set_duplicate(const msci_name_set *s);
void msci_name_set_free(msci_name_set *s);

/* Whether path (absolute, or relative to the working directory) lies inside root_real (a
 * folder's realpath), symbolic links resolved: 1 inside (or root_real itself), 0 outside.
 * A path that does not exist is judged by its deepest existing folder, resolved, and the
 * rest of its components, of which a ".." counts as outside; so a missing file is never
 * "inside" by a trick, and nothing is opened (only stat'ed through realpath). -1 with the
 * error set on out of memory. */
int msci_path_inside(const char *root_real, const char *path);

/* Formats into a growing buffer: *buf (realloc'd, owned by the caller) receives the
 * string. NULL on out of memory (with the error set). */
char *msci_path_printf(char **buf, size_t *cap, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

#endif
