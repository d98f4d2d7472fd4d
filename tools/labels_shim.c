/*
 * labels_shim.c — the labels of a filled batch.
 *
 * The public API has no getter for a batch's (or a dataset sample's) labels yet, and
 * evaluation needs the ground truth of the samples it scores. Until the library exports
 * one (proposed: msc_batch_labels(const msc_batch *, uint8_t *out, size_t cap,
 * int64_t *classes)), this file — and only this file — reads the field from the
 * library's own definition of struct msc_batch (lib/batch.h). The tool is built from
 * the same tree as the library, so the layout matches; replace the body with the public
 * call when it exists and drop the lib/ include path in tools/CMakeLists.txt.
 */
#include <string.h>

#include "batch.h" /* lib/: struct msc_batch */
#include "cli.h"

int cli_batch_labels(const msc_batch *batch, uint8_t *out, int64_t n, int64_t c) {
  if (!batch || batch->n != n || !batch->labels)
    return cli_error("the batch of %lld samples has no labels", (long long)n);
  if (batch->classes != c)
    return cli_error("the batch has %lld classes, expected %lld", (long long)batch->classes,
                     (long long)c);
  memcpy(out, batch->labels, (size_t)(n * c));
  return EXIT_OK;
}
