/* map_scene.c — a ground station's mapping step: a whole scene mapped with a model, its
 * progress printed, and the work cancelled when a deadline passes (the next pass is due).
 *   cc map_scene.c $(pkg-config --cflags --libs mosaic) -o map_scene
 *   ./map_scene MODEL OUT.tif DEADLINE_SECONDS RASTER... [--mask CLOUDS.tif]
 * One RASTER per modality of the model, in its modality order (docs/scenes.md). Exit
 * status: 0 mapped, 2 cancelled at the deadline (nothing written), 1 an error. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <mosaic/mosaic.h>

typedef struct {
  double start, deadline; /* seconds (CLOCK_MONOTONIC) */
} job;

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Called after every row of tiles: prints the progress and an ETA; a non-zero return
 * cancels msc_scene_write, which then removes its temporary file. */
static int32_t on_progress(int64_t done, int64_t total, void *user) {
  const job *j = user;
  const double el = now() - j->start,
               eta = done ? el / (double)done * (double)(total - done) : 0;
  printf("%lld/%lld tiles, %.1f s, ETA %.1f s\n", (long long)done, (long long)total, el, eta);
  fflush(stdout);
  return now() > j->deadline && done < total; /* past the deadline: stop */
}

int main(int argc, char **argv) {
  const char *mask = NULL;
  if (argc >= 3 && strcmp(argv[argc - 2], "--mask") == 0) mask = argv[argc - 1], argc -= 2;
  if (argc < 5) {
    fprintf(stderr, "usage: map_scene MODEL OUT.tif DEADLINE_SECONDS RASTER... [--mask M]\n");
    return 1;
  }
  msc_model *model = NULL;
  msc_options *o = NULL;
  msc_scene *scene = NULL;
  job j = {now(), 0};
  double seconds = 0;
  msc_status st = sscanf(argv[3], "%lf", &seconds) == 1 ? MSC_OK : MSC_E_INVALID_ARGUMENT;
  j.deadline = j.start + seconds;
  if (!st) st = msc_model_load(argv[1], NULL, &model);
  if (!st) st = msc_options_create(&o);
  if (!st) st = msc_options_set_int(o, "scene.batch", 8);
  if (!st && mask) st = msc_options_set_string(o, "scene.mask", mask); /* clouds: skipped */
  if (!st) st = msc_scene_open((const char *const *)(argv + 4), argc - 4, model, o, &scene);
  int64_t w = 0, h = 0, tiles = 0;
  if (!st) st = msc_scene_size(scene, &w, &h, &tiles);
  if (!st)
    printf("%lld x %lld pixels, %lld tiles\n", (long long)w, (long long)h, (long long)tiles);
  if (!st) st = msc_scene_write(scene, argv[2], NULL, on_progress, &j);
  if (st == MSC_E_CANCELLED)
    printf("cancelled at the deadline: %s\n", msc_last_error());
  else if (st)
    fprintf(stderr, "map_scene: %s: %s\n", msc_status_string(st), msc_last_error());
  else
    printf("class map in %s\n", argv[2]);
  msc_scene_free(scene), msc_options_free(o), msc_model_free(model);
  return st == MSC_E_CANCELLED ? 2 : st ? 1 : 0;
}
