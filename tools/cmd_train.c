/*
 * cmd_train.c — `mosaic train`: trains a model on a dataset's training split.
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* In two parts: one string literal may be at most 4095 characters (C99 5.2.4.1), the
 * help is longer; cmd_train joins them. */
static const char help_head[] =
    "usage: mosaic train --data DIR [options]\n"
    "\n"
    "Trains a MoSAiC model on the training split of a dataset, shows progress, scores the\n"
    "validation split after every epoch and saves a resumable checkpoint (weights and\n"
    "optimiser state) after every epoch and on Ctrl-C.\n"
    "\n"
    "Options:\n"
    "  --data DIR          dataset root (required)\n"
    "  --format NAME       bigearthnet-v2 (default), bigearthnet-v1, sen12ms, eurosat, "
    "manifest;\n"
    "                      time series: pastis, series (pimc.md)\n"
    "  --preset NAME       loss preset: mosaic1 (default), mosaic2, dual, simclr, iai, "
    "supervised, pimc\n"
    "                      (pimc: recurrence plots vs image patches, needs a time-series "
    "format)\n"
    "  --encoder NAME      encoder of every modality: resnet18 (default), resnet34, resnet50, "
    "tiny,\n"
    "                      convnextv2_atto, _femto, _pico, _nano, _tiny (CPU; model.md)\n"
    "  --fusion NAME       how the modalities are fused: concat (default) or xattn\n"
    "                      (cross-attention; fusion.dim, fusion.heads; model.md)\n"
    "  --task NAME         contrastive (default) or segmentation: a U-Net decoder trained on\n"
    "                      the dataset's masks (e.g. --format sen1floods11), validated per\n"
    "                      pixel (pixel accuracy, mIoU; segmentation.md)\n"
    "  --fraction F        train on a stratified share F of the split (low-label protocol;\n"
    "                      the same seed gives the same subset)\n"
    "  --labeled-fraction F  keep every sample, but only a stratified share F with its\n"
    "                      labels: the supervised terms see those, the self-supervised\n"
    "                      terms all (MoSAiC's low-label regime)\n"
    "  --epochs N          epochs (default 1; 0 saves the initialised model: a baseline)\n"
    "  --batch N           samples per step (default 32; at most the split's size)\n"
    "  --max-steps N       stop after N steps in all (default: no limit)\n"
    "  --lr F              peak learning rate (optim.lr; default 0.001); the schedule is a\n"
    "                      warm-up over 5% of the steps, then cosine decay, unless\n"
    "                      optim.warmup_steps / optim.total_steps are set\n";
static const char help_tail[] =
    "  --seed N            seed of initialisation, subset, order and augmentations (default "
    "42)\n"
    "  --out PATH          model file (default model.safetensors; with --resume: that file)\n"
    "  --init MODEL        start from the weights of another model file whose names start\n"
    "                      with --init-prefix (default \"enc.\": every encoder of a modality\n"
    "                      of the same name), e.g. a PIMC image encoder for EuroSAT\n"
    "  --resume CKPT       continue from a checkpoint of an earlier run; its saved\n"
    "                      configuration (stored in CKPT) is read unless --config is "
    "given\n"
    "  --no-validate       do not score the validation split after each epoch\n"
    "  --val-fraction F    score a stratified share F of the validation split (default 1)\n"
    "  --threshold T       F1 threshold of the validation metrics (default 0.5)\n"
    "  --stats MODE        normalisation: auto (published statistics, else computed from the\n"
    "                      data; default), published, computed\n"
    "  --workers N         data-loading threads (default 1)\n"
    "  --threads N         compute threads (default: all cores)\n"
    "  --backend NAME      auto (default), cpu, cuda\n"
    "  --precision P       f32 (default) or bf16 (AVX-512/AMX CPUs; precision.md)\n"
    "  --progress MODE     auto (a bar on a terminal, else a line every 10 s), bar, lines, "
    "none\n"
    "  --dist MODE         data-parallel training (distributed.md): auto (default:\n"
    "                      when mpirun/mpiexec/srun started more than one process),\n"
    "                      mpi, nccl (GPUs), none; --batch is the global batch, split\n"
    "                      evenly over the ranks; rank 0 alone prints, logs and saves\n"
    "  --dist-timeout S    seconds a rank waits for the others in a step (default 300)\n"
    "  --sync-bn           BatchNorm on the global batch's statistics (train.sync_bn)\n"
    "  --config FILE       read keys from a JSON file first (see tool.md)\n"
    "  --set KEY=VALUE     set any library option (options.md) or tool.KEY\n"
    "\n"
    "Writes PATH, PATH's .config.json (the effective configuration: --config it to repeat\n"
    "the run), .history.json (losses and validation metrics per epoch) and .steps.jsonl\n"
    "(one JSON line per optimiser step: loss and its terms, lr, skipped, wall seconds).\n"
    "Exit status: 0 done, 1 error, 2 bad usage, 130 interrupted (checkpoint saved).\n";

static const char *const allowed[] = {
    "data",      "format",      "preset",       "encoder",     "fusion",
    "fraction",  "epochs",      "batch",        "max-steps",   "lr",
    "seed",      "out",         "resume",       "no-validate", "val-fraction",
    "init",      "init-prefix", "threshold",    "stats",       "workers",
    "threads",   "backend",     "progress",     "task",        "labeled-fraction",
    "precision", "dist",        "dist-timeout", "sync-bn",     NULL};

static int set_schedule(msc_options *o, int64_t total) {
  msc_status st = cli_default_schedule(o, total);
  return st == MSC_OK ? EXIT_OK : cli_lib_error(st, "learning-rate schedule");
}

/* --init: the weights of another model file whose names start with --init-prefix
 * (default "enc.": the encoders), e.g. a PIMC-pretrained "s2" encoder under a new head. */
static int init_from(const cli_ctx *ctx, msc_model *model, const char *path) {
  msc_model *src = NULL;
  int rc = cli_load_model(ctx, path, &src);
  if (rc != EXIT_OK) return rc;
  const char *prefix = cli_str(ctx, "init_prefix", "enc.");
  int64_t copied = 0;
  msc_status st = msc_model_copy_weights(model, src, prefix, &copied);
  msc_model_free(src);
  if (st != MSC_OK) return cli_lib_error(st, "--init %s", path);
  printf("initialised %lld tensors (%s*) from %s\n", (long long)copied, prefix, path);
  return EXIT_OK;
}

/* --dist: the processes an MPI launcher started, when there are several of them (or
 * always with --dist mpi or nccl; auto uses MPI, which runs with or without GPUs). Open MPI's mpirun sets OMPI_COMM_WORLD_SIZE; MPICH's and Intel
 * MPI's mpiexec (Hydra) and Slurm's srun with PMI set PMI_SIZE. A launch of several
 * processes that cannot become one run is an error: they would train alone, each
 * writing the same files. *out stays NULL for a single-process run. */
static int open_dist(const cli_ctx *ctx, msc_dist **out) {
  const char *mode = cli_str(ctx, "dist", "auto");
  const char *vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"};
  long launched = 0;
  for (int i = 0; i < 2; ++i) {
    const char *v = getenv(vars[i]);
    long n = v ? strtol(v, NULL, 10) : 0;
    if (n > launched) launched = n;
  }
  if (strcmp(mode, "none") == 0 || (strcmp(mode, "auto") == 0 && launched < 2)) return EXIT_OK;
  const char *engine = strcmp(mode, "nccl") == 0 ? "nccl" : "mpi";
  msc_status st = msc_dist_create(engine, NULL, out);
  if (st != MSC_OK) {
    if (launched > 1)
      return cli_lib_error(st,
                           "started as one of %ld MPI processes, but data-parallel training is "
                           "unavailable (--dist none trains each alone)",
                           launched);
    return cli_lib_error(st, "--dist %s", engine);
  }
  st = msc_dist_set_timeout(*out, cli_float(ctx, "dist_timeout", 300));
  if (st != MSC_OK) return cli_lib_error(st, "--dist-timeout");
  cli_rank = msc_dist_rank(*out);
  return EXIT_OK;
}

int cmd_train(int argc, char **argv, int verbosity) {
  cli_ctx ctx;
  static char help[sizeof help_head + sizeof help_tail];
  snprintf(help, sizeof help, "%s%s", help_head, help_tail);
  int rc = cli_parse(&ctx, "train", help, allowed, 0, argc, argv, verbosity);
  if (rc >= 0) {
    cli_ctx_free(&ctx);
    return rc;
  }
  const char *resume = cli_str(&ctx, "resume", NULL);
  const char *out = cli_str(&ctx, "out", resume ? resume : "model.safetensors");
  int64_t epochs = cli_int(&ctx, "epochs", 1), batch = cli_int(&ctx, "batch", 32);
  if (batch < 2) {
    rc = cli_usage("train", "--batch must be at least 2");
    cli_ctx_free(&ctx);
    return rc;
  }
  msc_dist *dist = NULL;
  rc = open_dist(&ctx, &dist);
  if (rc != EXIT_OK) {
    cli_ctx_free(&ctx);
    return rc;
  }
  const int rank = msc_dist_rank(dist), ranks = msc_dist_size(dist);
  /* Rank 0 speaks for the run: the others print nothing on stdout. */
  if (rank > 0 && !freopen("/dev/null", "w", stdout)) {
    msc_dist_free(dist);
    cli_ctx_free(&ctx);
    return cli_error("cannot silence standard output of rank %d", rank);
  }
  msc_dataset *train = NULL, *val = NULL;
  msc_model *model = NULL;
  int failed_together = 0; /* (cli_train_job.failed_together) */
  msc_options *mopts = NULL;
  char *config_path = cli_sibling(out, ".config.json");
  char *history_path = cli_sibling(out, ".history.json");
  char *steps_path = cli_sibling(out, ".steps.jsonl");
  json_t *history = json_array();
  cli_progress pg;
  cli_progress_init(&pg, rank > 0 ? "none" : cli_str(&ctx, "progress", "auto"),
                    cli_float(&ctx, "progress_interval", 10));
  cli_catch_signals(); /* from here on, Ctrl-C is handled: a checkpoint once training runs */

  const int seg = strcmp(cli_opt_str(ctx.opts, "task"), "segmentation") == 0;
  rc = cli_open_dataset(&ctx, ctx.opts, NULL, 0, &train);
  int64_t n = train ? msc_dataset_size(train) : 0;
  if (rc == EXIT_OK && n < 2)
    rc = cli_error("the training split of %s has %lld sample(s); training needs at least 2",
                   cli_str(&ctx, "data", "?"), (long long)n);
  if (rc == EXIT_OK) rc = cli_model_keys_from_dataset(&ctx, ctx.opts, train);
  int64_t bsz = cli_train_batch(n, batch), spe = bsz > 0 ? n / bsz : 0;
  if (rc == EXIT_OK && dist && bsz % ranks != 0)
    rc = cli_usage("train",
                   "the global batch (--batch %lld) must be divisible by the %d ranks, each "
                   "taking an equal share",
                   (long long)bsz, ranks);
  int64_t total = epochs * spe, max_steps = cli_int(&ctx, "max_steps", 0);
  if (max_steps > 0 && max_steps < total) total = max_steps;
  /* The schedule follows the run's length; it goes into the model's options only, so a
   * resumed run with more epochs gets a schedule for its own length. */
  if (rc == EXIT_OK && !(mopts = cli_opts_copy(ctx.opts))) rc = cli_error("out of memory");
  if (rc == EXIT_OK && !seg) rc = cli_check_labels(mopts, train); /* masks are its labels */
  if (rc == EXIT_OK) rc = set_schedule(mopts, total);
  /* The run's configuration travels inside every checkpoint (option train.run_config, in
   * the same atomic write as the weights): --resume reads it from there, so a run killed
   * before its first save can never leave a checkpoint beside another run's
   * configuration. The file PATH.config.json is a copy, written after a save. */
  if (rc == EXIT_OK) {
    char *text = cli_config_text(&ctx, ctx.opts);
    if (!text)
      rc = EXIT_ERROR;
    else if (msc_options_set_string(mopts, "train.run_config", text) != MSC_OK)
      rc = cli_lib_error(MSC_E_INTERNAL, "train.run_config");
    free(text);
  }

  int64_t done = 0;
  if (rc == EXIT_OK && resume) {
    rc = cli_load_model(&ctx, resume, &model);
    if (rc == EXIT_OK) done = msc_model_step(model);
    if (rc == EXIT_OK) {
      msc_status st = msc_train_configure(model, mopts);
      if (st != MSC_OK) rc = cli_lib_error(st, "training options");
    }
  } else if (rc == EXIT_OK) {
    msc_status st = msc_model_create(mopts, &model);
    if (st != MSC_OK) rc = cli_lib_error(st, "cannot create the model");
    const char *init = cli_str(&ctx, "init", NULL);
    if (rc == EXIT_OK && init) rc = init_from(&ctx, model, init);
  }
  /* Every rank starts from rank 0's weights and optimiser state (a checkpoint each rank
   * read, or a model each created alike). */
  if (rc == EXIT_OK && dist) {
    msc_status st = msc_train_set_dist(model, dist);
    if (st != MSC_OK) rc = cli_lib_error(st, "data-parallel training over %d ranks", ranks);
    if (rc == EXIT_OK) done = msc_model_step(model);
  }
  /* The validation split, when the dataset has one with samples. A segmentation model
   * is scored per pixel on all of it (its samples have no patch labels to stratify a
   * share by: --val-fraction is not used). */
  if (rc == EXIT_OK && rank == 0 && cli_int(&ctx, "validate", 1)) {
    msc_options *vo = cli_opts_copy(ctx.opts);
    if (vo &&
        msc_options_set_float(vo, "data.fraction",
                              seg ? 1.0 : cli_float(&ctx, "val_fraction", 1.0)) == MSC_OK &&
        msc_options_set_float(vo, "data.labeled_fraction", 1.0) == MSC_OK &&
        msc_options_set_string(vo, "data.split", "validation") == MSC_OK) {
      msc_status st = msc_dataset_open(cli_str(&ctx, "data", ""),
                                       cli_str(&ctx, "format", "bigearthnet-v2"), vo, &val);
      if (st != MSC_OK && verbosity > 0) cli_note("no validation split (%s)", msc_last_error());
      if (st == MSC_OK && msc_dataset_size(val) == 0) {
        msc_dataset_free(val);
        val = NULL;
      }
    }
    msc_options_free(vo);
  }
  if (rc == EXIT_OK) {
    char enc[64];
    snprintf(enc, sizeof enc, "%s", cli_opt_str(ctx.opts, "modality.0.encoder"));
    printf("training %s (%s encoders, %lld parameters, backend %s) on %lld samples of %s "
           "(%s, fraction %g, %lld labelled)\n",
           seg ? "segmentation" : cli_opt_str(mopts, "train.preset"), enc,
           (long long)msc_model_parameter_count(model), msc_model_backend(model), (long long)n,
           cli_str(&ctx, "data", "?"), cli_str(&ctx, "format", "bigearthnet-v2"),
           cli_opt_float(ctx.opts, "data.fraction", 1),
           (long long)msc_dataset_labeled_count(train));
    printf("  %lld epoch(s) of %lld steps, batch %lld, %lld steps in all%s; validation: %s\n",
           (long long)epochs, (long long)spe, (long long)bsz, (long long)total,
           done ? ", resuming" : "", val ? "yes" : "none");
    if (done) printf("  resuming after step %lld of %s\n", (long long)done, resume);
    if (dist)
      printf("  data-parallel over %d ranks (%s): %lld samples of each batch per rank\n", ranks,
             strcmp(cli_str(&ctx, "dist", "auto"), "nccl") == 0 ? "NCCL" : "MPI",
             (long long)(bsz / ranks));
    fflush(stdout);
    cli_train_job job = {
        .model = model,
        .train = train,
        .val = val,
        .epochs = epochs,
        .batch = batch,
        .max_steps = max_steps,
        .done_steps = done,
        .workers = (int32_t)cli_int(&ctx, "workers", 1),
        .seed = (uint64_t)cli_opt_int(ctx.opts, "seed", 42),
        .threshold = (float)cli_float(&ctx, "threshold", 0.5),
        .save_path = rank == 0 ? out : NULL,
        .title = "train",
        .progress = &pg,
        .print_epochs = 1,
        .history = rank == 0 ? history : NULL,
        .segmentation = seg,
        .steps_path = rank == 0 ? steps_path : NULL,
        .dist = dist,
        .dist_timeout = cli_float(&ctx, "dist_timeout", 300),
    };
    /* The collectives of this run only: msc_train_set_dist's broadcasts came before t0. */
    const double t0 = cli_now(), comm0 = dist ? msc_dist_comm_seconds(dist) : 0.0;
    rc = cli_train_run(&job);
    failed_together = job.failed_together;
    /* The communication share (bench/dist_bench.sh reads this line): of a run that
     * finished; a failed one's collectives may have waited out a timeout. */
    if (dist && rc == EXIT_OK) {
      double wall = cli_now() - t0, comm = msc_dist_comm_seconds(dist) - comm0;
      printf("  communication: %.3f s of %.3f s on rank 0 (%.1f%%) in collectives\n", comm,
             wall, wall > 0 ? 100.0 * comm / wall : 0.0);
    }
    if (job.saves > 0) { /* the copy of the configuration the checkpoint now holds */
      int wrc = cli_write_config(&ctx, ctx.opts, config_path);
      if (rc == EXIT_OK) rc = wrc;
    }
    if (rank == 0 && (json_array_size(history) > 0 || rc == EXIT_OK)) {
      /* Append to the history of the run being resumed. */
      json_t *all = NULL;
      if (resume) {
        json_t *old = json_load_file(history_path, 0, NULL);
        if (json_is_array(old))
          all = old;
        else
          json_decref(old);
      }
      if (!all) all = json_array();
      json_array_extend(all, history);
      char *text = json_dumps(all, JSON_INDENT(2));
      json_decref(all);
      if (text) {
        int wrc = cli_write_file(history_path, text, strlen(text));
        if (rc == EXIT_OK) rc = wrc;
        free(text);
      }
    }
    if (rc == EXIT_OK) {
      char dur[32];
      cli_format_duration(cli_now() - t0, dur, sizeof dur);
      printf("model saved to %s (configuration %s, history %s) in %s\n", out, config_path,
             history_path, dur);
    }
  }
  msc_model_free(model);
  /* After the model, which borrows it. A run that failed on every rank together (an
   * agreement of cli_train_run reported it: rank 0 could not open its step log, validate
   * or save) ends MPI as a finished one does. A rank that failed otherwise leaves without
   * it: ending MPI waits for every rank, while the others may be waiting for this one in
   * a collective (up to --dist-timeout); a process that exits with an error and without
   * MPI_Finalize makes the launcher end the job at once (tests/dist/tool.sh). */
  if (rc == EXIT_OK || ranks == 1 || failed_together) msc_dist_free(dist);
  msc_dataset_free(train);
  msc_dataset_free(val);
  msc_options_free(mopts);
  json_decref(history);
  free(config_path);
  free(history_path);
  free(steps_path);
  cli_ctx_free(&ctx);
  if (rc == EXIT_OK) rc = cli_finish_output();
  return rc;
}
