/*
 * stratify.c — iterative stratification (Sechidis et al. 2011) for the low-label subsets.
 *
 * Two subsets: the one drawn (wanted share `fraction`) and the rest. Per label and per
 * subset a count is still wanted (its share of the label's samples); the label with the
 * fewest unassigned samples is handled first, so rare labels are placed while there is
 * room for them. Each of its samples goes where the label is wanted most (then where
 * more samples are wanted overall, then by the RNG). Unlabelled samples fill the totals
 * at the end, and a final pass moves as few samples as needed (cheapest first: those
 * whose labels stay at or above their wanted counts) so the subset size is exact.
 */
#include "data/stratify.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/internal.h"
#include "common/rng.h"

static uint64_t below(msci_rng *r, uint64_t k) {
  return k <= 1 ? 0 : msci_rng_next(r) % k;
}

static void shuffle(int64_t *v, int64_t n, msci_rng *r) {
  for (int64_t i = n - 1; i > 0; --i) {
    int64_t j = (int64_t)below(r, (uint64_t)i + 1);
    int64_t t = v[i];
    v[i] = v[j];
    v[j] = t;
  }
}

msc_status msci_stratified_subset(const uint8_t *y, int64_t n, int64_t c, double fraction,
                                  uint64_t seed, uint8_t *selected) {
  if (n < 0 || c < 0 || (((y == NULL && c > 0) || selected == NULL) && n > 0))
    return msci_fail(MSC_E_INVALID_ARGUMENT, "stratified subset: bad arguments");
  if (!(fraction >= 0.0 && fraction <= 1.0))
    return msci_fail(MSC_E_INVALID_ARGUMENT, "stratified subset: fraction %g is not in [0, 1]",
                     fraction);
  if (n == 0) return MSC_OK;
  const int64_t target = (int64_t)llround(fraction * (double)n);
  if (target == 0 || target == n) {
    memset(selected, target == n ? 1 : 0, (size_t)n);
    return MSC_OK;
  }
  msc_status st = MSC_OK;
  int64_t *count = calloc((size_t)c + 1, sizeof *count);
  int64_t *remaining = calloc((size_t)c + 1, sizeof *remaining);
  int64_t *start = calloc((size_t)c + 2, sizeof *start);
  double *want = calloc(2 * ((size_t)c + 1), sizeof *want);
  int64_t *sub_count = calloc((size_t)c + 1, sizeof *sub_count);
  int8_t *where = malloc((size_t)n);
  int64_t *perm = malloc((size_t)n * sizeof *perm);
  int64_t *list = NULL, *tmp = NULL;
  if (!count || !remaining || !start || !want || !sub_count || !where || !perm) {
    st = msci_fail(MSC_E_OUT_OF_MEMORY, "stratified subset: %lld samples", (long long)n);
    goto done;
  }
  int64_t links = 0;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t l = 0; l < c; ++l)
      if (y[i * c + l]) count[l]++, links++;
  list = malloc(((size_t)links + 1) * sizeof *list);
  tmp = malloc((size_t)n * sizeof *tmp);
  if (!list || !tmp) {
    st = msci_fail(MSC_E_OUT_OF_MEMORY, "stratified subset: %lld samples", (long long)n);
    goto done;
  }
  for (int64_t l = 0; l < c; ++l) start[l + 1] = start[l] + count[l];
  {
    int64_t *fill = remaining; /* reused as a cursor, then reset */
    for (int64_t l = 0; l < c; ++l) fill[l] = start[l];
    for (int64_t i = 0; i < n; ++i)
      for (int64_t l = 0; l < c; ++l)
        if (y[i * c + l]) list[fill[l]++] = i;
    for (int64_t l = 0; l < c; ++l) remaining[l] = count[l];
  }
  double *want0 = want, *want1 = want + c + 1;
  for (int64_t l = 0; l < c; ++l) {
    want0[l] = (double)count[l] * fraction;
    want1[l] = (double)count[l] - want0[l];
  }
  double total0 = (double)target, total1 = (double)(n - target);
  memset(where, -1, (size_t)n);
  msci_rng rng;
  msci_rng_seed(&rng, seed, "stratify");

  for (;;) {
    /* The label with the fewest unassigned samples (ties: the RNG). */
    int64_t best = -1, ties = 0;
    for (int64_t l = 0; l < c; ++l) {
      if (remaining[l] == 0) continue;
      if (best < 0 || remaining[l] < remaining[best]) {
        best = l;
        ties = 1;
      } else if (remaining[l] == remaining[best]) {
        ties++;
        if (below(&rng, (uint64_t)ties) == 0) best = l;
      }
    }
    if (best < 0) break;
    int64_t m = 0;
    for (int64_t k = start[best]; k < start[best + 1]; ++k)
      if (where[list[k]] < 0) tmp[m++] = list[k];
    shuffle(tmp, m, &rng);
    for (int64_t k = 0; k < m; ++k) {
      int64_t i = tmp[k];
      int j;
      if (want0[best] != want1[best])
        j = want0[best] > want1[best] ? 0 : 1;
      else if (total0 != total1)
        j = total0 > total1 ? 0 : 1;
      else
        j = (int)below(&rng, 2);
      where[i] = (int8_t)j;
      double *w = j == 0 ? want0 : want1;
      if (j == 0)
        total0 -= 1.0;
      else
        total1 -= 1.0;
      for (int64_t l = 0; l < c; ++l)
        if (y[i * c + l]) {
          w[l] -= 1.0;
          remaining[l]--;
        }
    }
  }
  /* Unlabelled samples, in random order, fill the totals. */
  for (int64_t i = 0; i < n; ++i) perm[i] = i;
  shuffle(perm, n, &rng);
  for (int64_t k = 0; k < n; ++k) {
    int64_t i = perm[k];
    if (where[i] >= 0) continue;
    int j = total0 > 0.5 ? 0 : 1;
    where[i] = (int8_t)j;
    if (j == 0)
      total0 -= 1.0;
    else
      total1 -= 1.0;
  }

  /* Exact size: move the cheapest samples first. */
  int64_t size = 0;
  for (int64_t i = 0; i < n; ++i) {
    selected[i] = where[i] == 0;
    if (selected[i]) {
      size++;
      for (int64_t l = 0; l < c; ++l)
        if (y[i * c + l]) sub_count[l]++;
    }
  }
  for (int pass = 0; pass < 3 && size != target; ++pass) {
    const int removing = size > target;
    for (int64_t k = 0; k < n && size != target; ++k) {
      int64_t i = perm[k];
      if ((selected[i] != 0) != removing) continue;
      int ok = 1;
      for (int64_t l = 0; l < c && ok && pass < 2; ++l) {
        if (!y[i * c + l]) continue;
        double wanted = (double)count[l] * fraction;
        if (removing)
          ok = pass == 0 ? (double)(sub_count[l] - 1) >= wanted : sub_count[l] >= 2;
        else
          ok = pass == 0 ? (double)(sub_count[l] + 1) <= ceil(wanted) : 1;
      }
      if (!ok) continue;
      selected[i] = removing ? 0 : 1;
      size += removing ? -1 : 1;
      for (int64_t l = 0; l < c; ++l)
        if (y[i * c + l]) sub_count[l] += removing ? -1 : 1;
    }
  }
  if (size != target)
    st = msci_fail(MSC_E_INTERNAL, "stratified subset: %lld samples instead of %lld",
                   (long long)size, (long long)target);
done:
  free(count);
  free(remaining);
  free(start);
  free(want);
  free(sub_count);
  free(where);
  free(perm);
  free(list);
  free(tmp);
  return st;
}
