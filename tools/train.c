/*
 * train.c — the training loop shared by `mosaic train`, the linear-probe and fine-tune
 * protocols of `mosaic eval` and `mosaic compare`.
 *
 * Epoch e reads the training split through its own msc_loader seeded by (seed, e), with
 * drop_last, so that every batch has the same size and epoch e is the same sequence of
 * batches whenever it runs. A run that stopped after s steps (Ctrl-C, or a finished
 * shorter run) therefore resumes exactly: epoch s / steps_per_epoch, after skipping its
 * first s % steps_per_epoch batches. After every epoch the model is saved (weights and
 * optimiser state: a resumable checkpoint) and scored on the validation split (per pixel
 * for a segmentation model: segscore.c).
 *
 * Distributed (job->dist): every rank runs this loop over its share of each global batch
 * (the loader's shard), so the steps, the epochs and the skipped batches of a resumed
 * run are the same everywhere; rank 0 alone validates, saves and logs.
 *
 * The per-step log (job->steps_path, `mosaic train`'s PATH.steps.jsonl) gets one JSON
 * object per optimiser step, written and flushed right after the step, so that a run
 * killed half-way keeps the lines of the steps it took. A resumed run restarts from the
 * checkpoint's step: the lines after it (steps taken after the last save, by a run that
 * was then killed) are dropped before the first new line, so every step appears once.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int64_t cli_train_batch(int64_t n, int64_t batch) {
  return batch < n ? batch : n;
}

msc_status cli_default_schedule(msc_options *o, int64_t total) {
  /* (the library's, shared with Model.fit; a run without steps keeps its options) */
  return total < 1 ? MSC_OK : msc_options_default_schedule(o, total);
}

json_t *cli_json_num(double v) {
  return isfinite(v) ? json_real(v) : json_null();
}

typedef struct {
  double loss, intra, inter, fused, views, bce, seg, dice;
} losses;

static void acc(losses *a, const msc_step_result *r, double w) {
  a->loss = a->loss * (1 - w) + r->loss * w;
  a->intra = a->intra * (1 - w) + r->loss_intra * w;
  a->inter = a->inter * (1 - w) + r->loss_inter * w;
  a->fused = a->fused * (1 - w) + r->loss_fused * w;
  a->views = a->views * (1 - w) + r->loss_views * w;
  a->bce = a->bce * (1 - w) + r->loss_bce * w;
  a->seg = a->seg * (1 - w) + r->loss_seg * w;
  a->dice = a->dice * (1 - w) + r->loss_dice * w;
}

/* "loss 1.2345 (intra 0.123 ...)" (the terms that are not 0); title: the word before the
 * number ("loss", or "loss(avg)" for the running average of the progress line). */
static void describe(const losses *l, const char *title, char *buf, size_t cap) {
  size_t o = (size_t)snprintf(buf, cap, "%s %.4f", title, l->loss);
  const char *names[] = {"intra", "inter", "fused", "views", "bce", "seg", "dice"};
  double v[] = {l->intra, l->inter, l->fused, l->views, l->bce, l->seg, l->dice};
  int first = 1;
  for (int i = 0; i < 7 && o < cap; ++i) {
    if (v[i] == 0) continue;
    o += (size_t)snprintf(buf + o, cap - o, "%s%s %.3f", first ? " (" : " ", names[i], v[i]);
    first = 0;
  }
  if (!first && o < cap) snprintf(buf + o, cap - o, ")");
}

static int save(cli_train_job *job) {
  if (!job->save_path) return EXIT_OK;
  msc_status st = msc_model_save(job->model, job->save_path);
  if (st == MSC_OK) job->saves++;
  return st == MSC_OK ? EXIT_OK : cli_lib_error(st, "cannot save %s", job->save_path);
}

/* Opens the per-step log for appending: with keep > 0 (a resumed run), the lines of
 * steps 1..keep are kept (rewritten atomically) and *wall0 is the "wall" of the last
 * of them, so that the seconds run on; otherwise it starts empty. NULL after an error. */
static FILE *steps_open(const char *path, int64_t keep, double *wall0) {
  *wall0 = 0;
  if (keep > 0) {
    FILE *in = fopen(path, "r");
    char *kept = NULL, *line = NULL;
    size_t kept_len = 0, cap = 0;
    FILE *mem = open_memstream(&kept, &kept_len);
    if (!mem) {
      if (in) fclose(in);
      cli_error("out of memory");
      return NULL;
    }
    ssize_t len;
    while (in && (len = getline(&line, &cap, in)) > 0) {
      json_t *o = json_loads(line, 0, NULL);
      json_t *step = json_object_get(o, "step");
      if (json_is_integer(step) && json_integer_value(step) <= keep) {
        fputs(line, mem);
        if (line[len - 1] != '\n') fputc('\n', mem);
        double w = json_number_value(json_object_get(o, "wall"));
        if (w > *wall0) *wall0 = w;
      }
      json_decref(o);
    }
    free(line);
    if (in) fclose(in);
    fclose(mem);
    int rc = cli_write_file(path, kept, kept_len);
    free(kept);
    if (rc != EXIT_OK) return NULL;
  }
  FILE *f = fopen(path, keep > 0 ? "a" : "w");
  if (!f) cli_error("cannot write %s", path);
  return f;
}

/* One line of the per-step log: the step's number (1-based, as in the history's "step"),
 * its epoch (1-based), the loss and its terms (null for a skipped step), the learning
 * rate, whether it was skipped and the seconds since the run started. */
static void steps_write(FILE *f, int64_t step, int64_t epoch, const msc_step_result *r,
                        int skipped, double wall) {
  json_t *o = json_object();
  json_object_set_new(o, "step", json_integer(step));
  json_object_set_new(o, "epoch", json_integer(epoch));
  const char *names[] = {"loss",       "loss_intra", "loss_inter", "loss_fused",
                         "loss_views", "loss_bce",   "loss_seg",   "loss_dice"};
  double v[] = {r->loss,       r->loss_intra, r->loss_inter, r->loss_fused,
                r->loss_views, r->loss_bce,   r->loss_seg,   r->loss_dice};
  for (int i = 0; i < 8; ++i)
    json_object_set_new(o, names[i], cli_json_num(skipped ? NAN : v[i]));
  json_object_set_new(o, "lr", cli_json_num(r->lr));
  json_object_set_new(o, "skipped", json_boolean(skipped));
  json_object_set_new(o, "wall", json_real(wall));
  char *text = json_dumps(o, JSON_COMPACT);
  json_decref(o);
  if (text) fprintf(f, "%s\n", text);
  free(text);
  fflush(f); /* a run killed now keeps this line */
}

/* The ranks of a distributed run agree on rc (msc_dist_agree): one rank's failure becomes
 * every rank's error at once, and job->failed_together tells the program that finalising
 * MPI will not wait. Used after work rank 0 does alone (opening the step log; at the end
 * of an epoch, validation and the checkpoint), with solo set: the others then wait for it
 * without a timeout, however long validation takes, and the timeout applies again after;
 * and after every rank reads its share of a batch, so that a rank whose data fails (a
 * corrupt file in its share) ends the job at once with its reason instead of leaving the
 * others in the step's collectives until --dist-timeout or the launcher's kill (one small
 * collective a step). Returns rc on the rank that failed, EXIT_ERROR with the failed
 * rank's message on the others. */
static int ranks_agree(cli_train_job *job, int rc, int solo) {
  if (!job->dist) return rc;
  msc_status mine = MSC_OK;
  const char *why = rc == EXIT_OK ? NULL : cli_last_error(&mine);
  if (rc != EXIT_OK && mine == MSC_OK) mine = MSC_E_IO;
  int32_t failed = -1;
  msc_status st = solo ? msc_dist_set_timeout(job->dist, 0) : MSC_OK;
  if (st == MSC_OK) st = msc_dist_agree(job->dist, mine, why, &failed);
  if (failed > 0) job->failed_together = 1;
  if (solo && failed >= 0) { /* (the agreement was made: the communicator works) */
    msc_status tst = msc_dist_set_timeout(job->dist, job->dist_timeout);
    if (st == MSC_OK) st = tst;
  }
  if (rc != EXIT_OK) return rc; /* (reported already) */
  return st == MSC_OK ? EXIT_OK : cli_lib_error(st, "%s", job->title);
}

/* The next batch of this rank's share into b, the ranks agreeing on the read. */
static int read_batch(cli_train_job *job, msc_loader *ld, msc_batch *b) {
  msc_status st = msc_loader_next(ld, b, NULL);
  int rc = st == MSC_OK ? EXIT_OK : cli_lib_error(st, "reading data");
  return ranks_agree(job, rc, 0);
}

/* Scores the model on the validation split into *m; 0 on success. */
static int validate(cli_train_job *job, double *m, int64_t *n) {
  float *probs = NULL;
  uint8_t *labels = NULL;
  int rc = cli_infer(job->model, job->val, 64, job->progress, "validation", &probs, &labels, 0,
                     NULL, NULL);
  if (rc != EXIT_OK) return rc;
  *n = msc_dataset_size(job->val);
  msc_status st = msc_metrics_compute(probs, labels, *n, msc_dataset_class_count(job->val),
                                      job->threshold, m, MSC_METRIC_COUNT);
  free(probs);
  free(labels);
  return st == MSC_OK ? EXIT_OK : cli_lib_error(st, "validation metrics");
}

/* A segmentation model's validation pass: per pixel, exactly as `mosaic eval` scores it
 * (cli_seg_score with the training batch size), printed and put into entry (if any). */
static int validate_segmentation(cli_train_job *job, json_t *entry) {
  cli_seg_result r = {0};
  int rc = cli_seg_score(job->model, job->val, job->batch, job->progress, "validation", &r);
  if (rc != EXIT_OK) return rc;
  const msc_class_metrics *m = &r.metrics;
  if (job->print_epochs) {
    printf("  validation (%lld samples, %lld pixels): pixel accuracy %.4f  mIoU %.4f  "
           "macro F1 %.4f\n",
           (long long)r.n, (long long)m->counted, m->accuracy, m->miou, m->macro_f1);
    fflush(stdout);
  }
  if (entry) {
    json_t *v = json_object(), *iou = json_array();
    json_object_set_new(v, "samples", json_integer(r.n));
    json_object_set_new(v, "pixels", json_integer(m->counted));
    json_object_set_new(v, "pixel_accuracy", cli_json_num(m->accuracy));
    json_object_set_new(v, "miou", cli_json_num(m->miou));
    json_object_set_new(v, "macro_f1", cli_json_num(m->macro_f1));
    for (int64_t k = 0; k < r.c; ++k) json_array_append_new(iou, cli_json_num(r.iou[k]));
    json_object_set_new(v, "iou", iou);
    json_object_set_new(entry, "validation", v);
  }
  cli_seg_free(&r);
  return EXIT_OK;
}

int cli_train_run(cli_train_job *job) {
  int64_t n = msc_dataset_size(job->train);
  int64_t bsz = cli_train_batch(n, job->batch);
  if (bsz < 2)
    return cli_error("%s: the training split has %lld sample(s); a step needs at least 2",
                     job->title, (long long)n);
  int64_t spe = n / bsz;
  int64_t total = job->epochs * spe;
  if (job->max_steps > 0 && job->max_steps < total) total = job->max_steps;
  int64_t done = job->done_steps;
  /* --epochs 0: the initialised model is the result (a random-encoder baseline). */
  if (total == 0 && done == 0) return save(job);
  if (done >= total) {
    cli_note("%s: %lld of %lld steps are done already; nothing to train", job->title,
             (long long)done, (long long)total);
    return EXIT_OK;
  }
  double wall0 = 0;
  FILE *steps_log = NULL;
  int rc = EXIT_OK;
  if (job->steps_path && !(steps_log = steps_open(job->steps_path, done, &wall0)))
    rc = EXIT_ERROR;
  if ((rc = ranks_agree(job, rc, 1)) != EXIT_OK) {
    if (steps_log) fclose(steps_log);
    return rc;
  }
  msc_batch *b = NULL;
  if (msc_batch_create(&b) != MSC_OK) {
    if (steps_log) fclose(steps_log);
    return cli_error("out of memory");
  }
  double t_run = cli_now();
  int64_t run_start = done;
  losses ema = {0};
  int64_t skipped = 0;
  for (int64_t epoch = done / spe; rc == EXIT_OK && epoch < job->epochs && done < total;
       ++epoch) {
    int64_t first = done - epoch * spe; /* batches of this epoch already done */
    int64_t last = spe < total - epoch * spe ? spe : total - epoch * spe;
    msc_loader *ld = NULL;
    msc_status st = msc_loader_create_shard(
        job->train, bsz, job->seed + 1000003ull * (uint64_t)epoch, job->workers, 1,
        msc_dist_rank(job->dist), msc_dist_size(job->dist), &ld);
    if (st != MSC_OK) {
      rc = cli_lib_error(st, "%s: data loader", job->title);
      break;
    }
    for (int64_t j = 0; j < first && rc == EXIT_OK; ++j) /* resume: skip what was done */
      rc = read_batch(job, ld, b);
    char label[64];
    snprintf(label, sizeof label, "%s epoch %lld/%lld", job->title, (long long)epoch + 1,
             (long long)job->epochs);
    cli_progress_begin(job->progress, label, (last - first) * bsz);
    losses sum = {0};
    int64_t steps = 0, epoch_skipped = 0;
    double t_epoch = cli_now();
    double lr = 0;
    for (int64_t j = first; rc == EXIT_OK && j < last && !cli_interrupted; ++j) {
      if ((rc = read_batch(job, ld, b)) != EXIT_OK) break;
      msc_step_result r = {.struct_size = sizeof r};
      st = msc_train_step(job->model, b, &r);
      if (st == MSC_E_NUMERICAL && r.skipped) {
        skipped++, epoch_skipped++;
        cli_progress_clear(job->progress);
        cli_note("step %lld skipped: %s", (long long)done + 1, msc_last_error());
      } else if (st != MSC_OK) {
        rc = cli_lib_error(st, "%s: step %lld", job->title, (long long)done + 1);
        break;
      } else {
        acc(&ema, &r, steps == 0 && done == run_start ? 1.0 : 0.1);
        steps++;
        sum.loss += r.loss, sum.intra += r.loss_intra, sum.inter += r.loss_inter;
        sum.fused += r.loss_fused, sum.views += r.loss_views, sum.bce += r.loss_bce;
        sum.seg += r.loss_seg, sum.dice += r.loss_dice;
        lr = r.lr;
      }
      done++;
      if (steps_log)
        steps_write(steps_log, done, epoch + 1, &r, st != MSC_OK, wall0 + cli_now() - t_run);
      /* The progress line's loss is a running average (the last steps weigh most:
       * weight 0.1 per step), not the epoch's mean that the summary line prints, so it
       * says "loss(avg)". Its fields by importance: the line keeps as many as fit. */
      char extra[320], terms[256], eta[32];
      describe(&ema, "loss(avg)", terms, sizeof terms);
      char *paren = strstr(terms, " (");
      double per_step = (cli_now() - t_run) / (double)(done - run_start);
      cli_format_duration(per_step * (double)(total - done), eta, sizeof eta);
      if (paren) *paren++ = 0;
      snprintf(extra, sizeof extra, "%s  run ETA %s  lr %.2e%s%s", terms, eta, lr,
               paren ? "  " : "", paren ? paren : "");
      cli_progress_update(job->progress, (j + 1 - first) * bsz, extra);
    }
    msc_loader_free(ld);
    if (rc != EXIT_OK) {
      cli_progress_clear(job->progress);
      break;
    }
    if (cli_interrupted) {
      cli_progress_clear(job->progress);
      rc = save(job);
      if (rc == EXIT_OK) {
        if (job->save_path)
          cli_note("interrupted after step %lld; checkpoint saved to %s (continue with "
                   "--resume %s)",
                   (long long)done, job->save_path, job->save_path);
        else
          cli_note("interrupted after step %lld", (long long)done);
        rc = EXIT_INTERRUPTED;
      }
      break;
    }
    cli_progress_end(job->progress, NULL);
    double secs = cli_now() - t_epoch;
    if (steps > 0) {
      double k = 1.0 / (double)steps;
      sum.loss *= k, sum.intra *= k, sum.inter *= k, sum.fused *= k, sum.views *= k,
          sum.bce *= k, sum.seg *= k, sum.dice *= k;
    }
    char desc[256], dur[32];
    if (steps > 0)
      describe(&sum, "loss", desc, sizeof desc);
    else /* every step skipped: there is no loss to report */
      snprintf(desc, sizeof desc, "no step taken");
    if (epoch_skipped > 0) {
      size_t o = strlen(desc);
      snprintf(desc + o, sizeof desc - o, "  %lld step(s) skipped", (long long)epoch_skipped);
    }
    if (steps == 0) /* the history's losses are null */
      sum.loss = sum.intra = sum.inter = sum.fused = sum.views = sum.bce = sum.seg = sum.dice =
          NAN;
    cli_format_duration(secs, dur, sizeof dur);
    if (job->print_epochs) {
      printf("%s epoch %lld/%lld  step %lld  %s  %.1f samples/s  %s\n", job->title,
             (long long)epoch + 1, (long long)job->epochs, (long long)done, desc,
             secs > 0 ? (double)((last - first) * bsz) / secs : 0.0, dur);
      fflush(stdout);
    }
    json_t *entry = job->history ? json_object() : NULL;
    if (entry) {
      json_object_set_new(entry, "epoch", json_integer(epoch + 1));
      json_object_set_new(entry, "step", json_integer(done));
      json_object_set_new(entry, "loss", cli_json_num(sum.loss));
      json_object_set_new(entry, "loss_intra", cli_json_num(sum.intra));
      json_object_set_new(entry, "loss_inter", cli_json_num(sum.inter));
      json_object_set_new(entry, "loss_fused", cli_json_num(sum.fused));
      json_object_set_new(entry, "loss_views", cli_json_num(sum.views));
      json_object_set_new(entry, "loss_bce", cli_json_num(sum.bce));
      json_object_set_new(entry, "loss_seg", cli_json_num(sum.seg));
      json_object_set_new(entry, "loss_dice", cli_json_num(sum.dice));
      json_object_set_new(entry, "lr", cli_json_num(lr));
      json_object_set_new(entry, "seconds", cli_json_num(secs));
      json_object_set_new(entry, "skipped_steps", json_integer(skipped));
    }
    if (job->val && msc_dataset_size(job->val) > 0 && job->segmentation) {
      rc = validate_segmentation(job, entry);
      if (rc == EXIT_INTERRUPTED) { /* stopped while validating: still save */
        rc = save(job);
        if (rc == EXIT_OK) {
          cli_note("interrupted after step %lld; checkpoint saved to %s", (long long)done,
                   job->save_path ? job->save_path : "(nowhere)");
          rc = EXIT_INTERRUPTED;
        }
      }
      if (rc != EXIT_OK) {
        json_decref(entry);
        if (rc == EXIT_ERROR) rc = ranks_agree(job, rc, 1); /* the others learn of it */
        break;
      }
    } else if (job->val && msc_dataset_size(job->val) > 0) {
      double m[MSC_METRIC_COUNT];
      int64_t nv = 0;
      rc = validate(job, m, &nv);
      if (rc == EXIT_INTERRUPTED) { /* stopped while validating: still save */
        rc = save(job);
        if (rc == EXIT_OK) {
          cli_note("interrupted after step %lld; checkpoint saved to %s", (long long)done,
                   job->save_path ? job->save_path : "(nowhere)");
          rc = EXIT_INTERRUPTED;
        }
        json_decref(entry);
        break;
      }
      if (rc != EXIT_OK) {
        json_decref(entry);
        if (rc == EXIT_ERROR) rc = ranks_agree(job, rc, 1); /* the others learn of it */
        break;
      }
      if (job->print_epochs) {
        printf("  validation (%lld samples): macro AP %.4f  micro AP %.4f  macro F1 %.4f  "
               "micro F1 %.4f\n",
               (long long)nv, m[MSC_METRIC_MACRO_AP], m[MSC_METRIC_MICRO_AP],
               m[MSC_METRIC_MACRO_F1], m[MSC_METRIC_MICRO_F1]);
        fflush(stdout);
      }
      if (entry) {
        json_t *v = json_object();
        json_object_set_new(v, "samples", json_integer(nv));
        json_object_set_new(v, "macro_ap", cli_json_num(m[MSC_METRIC_MACRO_AP]));
        json_object_set_new(v, "micro_ap", cli_json_num(m[MSC_METRIC_MICRO_AP]));
        json_object_set_new(v, "macro_f1", cli_json_num(m[MSC_METRIC_MACRO_F1]));
        json_object_set_new(v, "micro_f1", cli_json_num(m[MSC_METRIC_MICRO_F1]));
        json_object_set_new(entry, "validation", v);
      }
    }
    if (entry) json_array_append_new(job->history, entry);
    rc = ranks_agree(job, save(job), 1);
  }
  msc_batch_free(b);
  if (steps_log && (ferror(steps_log) | fclose(steps_log)) != 0) {
    cli_note("could not write all of %s", job->steps_path);
  }
  return rc;
}
